"""Calibration run: how often does each chapter fail by chance under its own theory?

Each chapter declares ``false_failure_bound``, the probability that a correct theory fails a
re-run (``asbbook.report``). This script re-executes chapters with fresh seeds, in fresh kernels
(papermill), and reports the observed failure fraction with its exact (Clopper-Pearson) 95%
confidence interval against the declared bound. A failure is an ``AgreementError`` (a table
rejected its theory); any other error is a bug and is reported separately, never counted as a
chance failure.

Two runners execute a chapter. ``papermill`` is the build's own path: a fresh Jupyter kernel per
run. ``inprocess`` executes the same code cells, with the parameters injected after the
parameters cell as papermill does, in a fresh namespace inside a long-lived worker process; it
saves the kernel start and the imports (about 7 of 20 s per smoke run) and is what makes 200
seeds per chapter affordable on 2 cores. ``--check-runners K`` runs K seeds per chapter both
ways and requires the same outcome and the same glued numbers, so the shortcut is verified, not
assumed. Every run gets its own empty sweep cache (``ASBBOOK_CACHE_DIR``).

Results are cached one JSON file per ``(chapter, size, seed)`` under ``bench/calibration/``, so
an interrupted run resumes and a later session adds seeds. The summary table is written into
``bench/README.md`` between the calibration markers.

    .venv/bin/python bench/calibrate.py --chapters 01 02 03 04 05 06 --seeds 3 --check-runners 3
    .venv/bin/python bench/calibrate.py --chapters 01 02 03 04 05 06 --seeds 200 --size smoke
    .venv/bin/python bench/calibrate.py --chapters 01 02 03 04 --seeds 20 --size full
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import multiprocessing
import os
import signal
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from scipy import stats
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / "calibration"
README = ROOT / "bench" / "README.md"
BEGIN, END = "<!-- CALIBRATION-BEGIN -->", "<!-- CALIBRATION-END -->"
BATCH = 25  # runs per worker process before it is replaced
FIRST_SEED = 1000  # fresh seeds: the chapters' defaults (seed 0) are not part of the sample


def chapter_path(chapter: str) -> Path:
    (path,) = sorted((ROOT / "book").glob(f"{chapter}-*.ipynb"))
    return path


def worker_setup() -> None:
    """Each worker (and each kernel it starts) runs one thread, without progress bars: the pool
    fills the cores."""
    os.environ.update(
        TQDM_DISABLE="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        MPLBACKEND="Agg",
        PYTHONWARNINGS="ignore",
    )


def run_parameters(source: Path, size: str, seed: int) -> dict:
    from asbbook import notebooks

    parameters = dict(notebooks.smoke_parameters(source)) if size == "smoke" else {}
    parameters["seed"] = seed
    if "executor" in notebooks.declared_parameters(source):
        parameters["executor"] = "inprocess"  # the pool already uses both cores
    return parameters


def classify(exc: BaseException) -> tuple[str, str]:
    """A rejected theory table is a chance failure; anything else is a bug."""
    name = getattr(exc, "ename", type(exc).__name__)  # papermill wraps the kernel's exception
    outcome = "chance-failure" if name == "AgreementError" else "error"
    return outcome, f"{name}: {getattr(exc, 'evalue', exc)}"[:500]


def execute_papermill(source: Path, parameters: dict) -> tuple[dict, BaseException | None]:
    from asbbook import notebooks

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / source.name
        error = None
        try:
            notebooks.execute_chapter(source, out, parameters, progress=False, cwd=ROOT / "book")
        except Exception as exc:
            error = exc
        glued = notebooks.glued_values(out) if out.exists() else {}
    return glued, error


def is_colab_install(cell) -> bool:
    return "remove-cell" in cell.metadata.get("tags", []) and "pip install" in cell.source


def execute_inprocess(source: Path, parameters: dict) -> tuple[dict, BaseException | None]:
    """Run the chapter's code cells in a fresh namespace, injecting ``parameters`` right after
    the ``parameters`` cell (papermill's rule), and return the glued values' plain-text reprs."""
    import matplotlib.pyplot as plt
    import myst_nb
    import nbformat

    glued: dict[str, str] = {}

    def capture(name, value, display=True):  # myst_nb.glue's signature
        glued[name] = repr(value)

    nb = nbformat.read(source, as_version=4)
    namespace: dict = {"__name__": "__main__"}
    real_glue, myst_nb.glue = myst_nb.glue, capture
    cwd = os.getcwd()
    error = None
    try:
        os.chdir(ROOT / "book")
        with contextlib.redirect_stdout(io.StringIO()):
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code" or is_colab_install(cell):
                    continue
                exec(compile(cell.source, f"{source.name}:cell{index}", "exec"), namespace)
                if "parameters" in cell.metadata.get("tags", []):
                    namespace.update(parameters)
    except Exception as exc:
        error = exc
    finally:
        myst_nb.glue = real_glue
        os.chdir(cwd)
        plt.close("all")
    return glued, error


def run_one(chapter: str, size: str, seed: int, runner: str = "inprocess") -> dict:
    """Execute one chapter with one seed (``runner``: ``papermill`` or ``inprocess``), each
    with its own empty sweep cache; classify the outcome."""
    worker_setup()
    source = chapter_path(chapter)
    parameters = run_parameters(source, size, seed)
    execute = execute_papermill if runner == "papermill" else execute_inprocess
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        os.environ["ASBBOOK_CACHE_DIR"] = cache
        glued, error = execute(source, parameters)
    outcome, detail = ("pass", "") if error is None else classify(error)
    bound = glued.get("false_failure_bound")
    return {
        "chapter": chapter,
        "size": size,
        "seed": seed,
        "runner": runner,
        "outcome": outcome,
        "detail": detail,
        "false_failure_bound": float(bound) if bound is not None else None,
        "seconds": round(time.perf_counter() - start, 2),
        "glued": {k: v for k, v in glued.items() if not v.startswith("<")},
    }


def same_numbers(a: dict, b: dict) -> list[str]:
    """Names whose glued values differ between two runs (numbers to 1e-9 relative)."""
    bad = []
    for name in sorted(set(a) | set(b)):
        x, y = a.get(name), b.get(name)
        if x == y:
            continue
        try:
            if math.isclose(float(x), float(y), rel_tol=1e-9, abs_tol=1e-12):
                continue
        except (TypeError, ValueError):
            pass
        bad.append(f"{name}: {x} != {y}")
    return bad


def check_runners(chapters: list[str], size: str, n_seeds: int, workers: int) -> bool:
    """Run ``n_seeds`` seeds per chapter with both runners; report any disagreement."""
    jobs = [
        (c, size, s, r)
        for c in chapters
        for s in range(FIRST_SEED, FIRST_SEED + n_seeds)
        for r in ("papermill", "inprocess")
    ]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        records = list(
            tqdm(pool.map(run_one, *zip(*jobs, strict=True)), total=len(jobs), desc="runners")
        )
    ok = True
    for paper, inproc in zip(records[::2], records[1::2], strict=True):
        where = f"chapter {paper['chapter']} seed {paper['seed']}"
        diffs = same_numbers(paper["glued"], inproc["glued"])
        if paper["outcome"] != inproc["outcome"] or diffs or not paper["glued"]:
            ok = False
            print(f"MISMATCH {where}: {paper['outcome']} / {inproc['outcome']}; {diffs[:5]}")
        else:
            print(
                f"{where}: same outcome ({paper['outcome']}) and {len(paper['glued'])} glued "
                f"values; {paper['seconds']:.1f} s (papermill) vs {inproc['seconds']:.1f} s"
            )
    return ok


def save(record: dict) -> None:
    """Write one run's record atomically (an interrupted run leaves no partial file)."""
    path = cache_file(record["chapter"], record["size"], record["seed"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(path)


def cache_file(chapter: str, size: str, seed: int) -> Path:
    return CACHE / size / chapter / f"seed-{seed}.json"


def load(chapter: str, size: str) -> list[dict]:
    folder = CACHE / size / chapter
    return [json.loads(p.read_text()) for p in sorted(folder.glob("seed-*.json"))]


def calibration_row(label: str, size: str, runs: list[dict], bound: float) -> dict:
    """Failures among ``runs`` against ``bound``: the exact (Clopper-Pearson) 95% interval, the
    one-sided exact test of "rate <= bound" at 5% (consistent unless rejected), the smallest
    failure count it rejects and its power against a rate of 10 times the bound."""
    n = len(runs)
    fails = sum(r["outcome"] == "chance-failure" for r in runs)
    lo, hi = stats.binomtest(fails, n).proportion_ci(0.95, method="exact")
    p_exceeds = float(stats.binom.sf(fails - 1, n, bound))
    reject_at = next(k for k in range(n + 2) if stats.binom.sf(k - 1, n, bound) < 0.05)
    return {
        "chapter": label,
        "size": size,
        "seeds": n,
        "chance_failures": fails,
        "observed_rate": fails / n,
        "ci95": [float(lo), float(hi)],
        "declared_bound": bound,
        "p_value_rate_exceeds_bound": p_exceeds,
        "consistent": p_exceeds >= 0.05,
        "rejects_at_failures": reject_at,
        "power_at_10x_bound": float(stats.binom.sf(reject_at - 1, n, min(1.0, 10 * bound))),
        "errors": sum(r["outcome"] == "error" for r in runs),
        "mean_seconds": sum(r["seconds"] for r in runs) / n,
    }


def summarise(chapters: list[str], sizes: list[str]) -> list[dict]:
    """One row per chapter and size; at each size, a ``book`` row over the seeds every chapter
    ran, where a seed fails when any chapter does and the bound is the sum of the chapters'."""
    rows = []
    for size in sizes:
        by_chapter = {c: load(c, size) for c in chapters}
        by_chapter = {c: runs for c, runs in by_chapter.items() if runs}
        bounds = {}
        for chapter, runs in by_chapter.items():
            declared = [r["false_failure_bound"] for r in runs if r["false_failure_bound"]]
            bounds[chapter] = max(declared) if declared else float("nan")
            rows.append(calibration_row(chapter, size, runs, bounds[chapter]))
        if len(by_chapter) == len(chapters) > 1:
            seeds = set.intersection(*({r["seed"] for r in runs} for runs in by_chapter.values()))
            book = []
            for seed in sorted(seeds):
                outcomes = [
                    r["outcome"] for runs in by_chapter.values() for r in runs if r["seed"] == seed
                ]
                failed = "chance-failure" in outcomes
                book.append({"outcome": "chance-failure" if failed else "pass", "seconds": 0.0})
                if "error" in outcomes:
                    book[-1]["outcome"] = "error"
            if book:
                rows.append(calibration_row("book", size, book, sum(bounds.values())))
    return rows


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| chapter | size | seeds | chance failures | observed rate (95% CI) | declared bound "
        "| consistent (p) | rejects at | power at 10x bound | errors (bugs) | mean s/run |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lo, hi = r["ci95"]
        consistent = "yes" if r["consistent"] else "**no**"
        seconds = f"{r['mean_seconds']:.1f}" if r["chapter"] != "book" else "—"
        lines.append(
            f"| {r['chapter']} | {r['size']} | {r['seeds']} | {r['chance_failures']} "
            f"| {r['observed_rate']:.3f} ([{lo:.3f}, {hi:.3f}]) | {r['declared_bound']:.4g} "
            f"| {consistent} ({r['p_value_rate_exceeds_bound']:.2f}) | {r['rejects_at_failures']} "
            f"| {r['power_at_10x_bound']:.2f} | {r['errors']} | {seconds} |"
        )
    return "\n".join(lines)


def write_readme(table: str) -> None:
    text = README.read_text()
    block = f"{BEGIN}\n{table}\n{END}"
    if BEGIN in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    README.write_text(text)


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through the pool's clean-up, as Ctrl-C does


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chapters", nargs="+", default=["01", "02", "03", "04", "05", "06"])
    parser.add_argument("--seeds", type=int, default=200, help="seeds per chapter")
    parser.add_argument("--size", choices=("smoke", "full"), default="smoke")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runner", choices=("inprocess", "papermill"), default="inprocess")
    parser.add_argument("--check-runners", type=int, default=0, metavar="K")
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if args.check_runners:
        ok = check_runners(args.chapters, args.size, args.check_runners, args.workers)
        raise SystemExit(0 if ok else 1)
    if not args.summary_only:
        todo = [  # seed-major, so a run stopped early still covers every chapter
            (c, args.size, s)
            for s in range(FIRST_SEED, FIRST_SEED + args.seeds)
            for c in args.chapters
            if not cache_file(c, args.size, s).exists()
        ]
        # fresh workers every BATCH runs per worker, so a chapter's figures and caches cannot
        # pile up (a new pool per batch: Python 3.11's max_tasks_per_child hangs when it
        # replaces a worker)
        context = multiprocessing.get_context("spawn")
        step = BATCH * args.workers
        with tqdm(total=len(todo), desc="calibration") as bar:
            for first in range(0, len(todo), step):
                with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
                    try:
                        futures = [
                            pool.submit(run_one, *job, args.runner)
                            for job in todo[first : first + step]
                        ]
                        for future in as_completed(futures):
                            save(future.result())
                            bar.update()
                    except BaseException:  # Ctrl-C or SIGTERM: leave no worker behind
                        pool.shutdown(wait=False, cancel_futures=True)
                        for child in multiprocessing.active_children():
                            child.terminate()
                        raise
    rows = summarise(args.chapters, ["smoke", "full"])
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "summary.json").write_text(json.dumps(rows, indent=1) + "\n")
    table = markdown_table(rows)
    write_readme(table)
    print(table)


if __name__ == "__main__":
    main()
