"""Calibration run: how often does each chapter fail by chance under its own theory?

Each chapter declares ``false_failure_bound``, the probability that a correct theory fails a
re-run (``asbbook.report``). This script re-executes chapters with fresh seeds, in fresh kernels
(papermill), and reports the observed failure fraction with its exact (Clopper-Pearson) 95%
confidence interval against the declared bound. A failure is an ``AgreementError`` (a table
rejected its theory); any other error is a bug and is reported separately, never counted as a
chance failure.

Results are cached one JSON file per ``(chapter, size, seed)`` under ``bench/calibration/``, so
an interrupted run resumes and a later session adds seeds. The summary table is written into
``bench/README.md`` between the calibration markers.

    .venv/bin/python bench/calibrate.py --chapters 01 02 03 04 05 06 --seeds 200 --size smoke
    .venv/bin/python bench/calibrate.py --chapters 01 02 03 04 --seeds 20 --size full
"""

from __future__ import annotations

import argparse
import json
import os
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
FIRST_SEED = 1000  # fresh seeds: the chapters' defaults (seed 0) are not part of the sample


def chapter_path(chapter: str) -> Path:
    (path,) = sorted((ROOT / "book").glob(f"{chapter}-*.ipynb"))
    return path


def run_one(chapter: str, size: str, seed: int) -> dict:
    """Execute one chapter with one seed in a fresh kernel; classify the outcome."""
    from asbbook import notebooks

    source = chapter_path(chapter)
    parameters = dict(notebooks.smoke_parameters(source)) if size == "smoke" else {}
    parameters["seed"] = seed
    if "executor" in notebooks.declared_parameters(source):
        parameters["executor"] = "inprocess"  # the pool already uses both cores
    # the kernel inherits these: no progress bars, and one thread per run (the pool fills the cores)
    os.environ.update(TQDM_DISABLE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    start = time.perf_counter()
    outcome, detail, bound = "pass", "", None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / source.name
        try:
            notebooks.execute_chapter(source, out, parameters, progress=False, cwd=ROOT / "book")
        except Exception as exc:  # papermill wraps the kernel's exception
            name = getattr(exc, "ename", type(exc).__name__)
            outcome = "chance-failure" if name == "AgreementError" else "error"
            detail = f"{name}: {getattr(exc, 'evalue', exc)}"[:500]
        if out.exists():
            glued = notebooks.glued_values(out)
            if "false_failure_bound" in glued:
                bound = float(glued["false_failure_bound"])
    return {
        "chapter": chapter,
        "size": size,
        "seed": seed,
        "outcome": outcome,
        "detail": detail,
        "false_failure_bound": bound,
        "seconds": round(time.perf_counter() - start, 2),
    }


def cache_file(chapter: str, size: str, seed: int) -> Path:
    return CACHE / size / chapter / f"seed-{seed}.json"


def load(chapter: str, size: str) -> list[dict]:
    folder = CACHE / size / chapter
    return [json.loads(p.read_text()) for p in sorted(folder.glob("seed-*.json"))]


def summarise(chapters: list[str], sizes: list[str]) -> str:
    lines = [
        "| chapter | size | seeds | chance failures | observed rate (95% CI) | declared bound "
        "| consistent | errors (bugs) | mean s/run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size in sizes:
        for chapter in chapters:
            runs = load(chapter, size)
            if not runs:
                continue
            n = len(runs)
            fails = sum(r["outcome"] == "chance-failure" for r in runs)
            errors = sum(r["outcome"] == "error" for r in runs)
            bounds = [r["false_failure_bound"] for r in runs if r["false_failure_bound"]]
            bound = max(bounds) if bounds else float("nan")
            lo, hi = stats.binomtest(fails, n).proportion_ci(0.95, method="exact")
            # consistent: the data do not reject "rate <= bound" (one-sided exact test at 5%)
            p_exceeds = stats.binom.sf(fails - 1, n, bound) if bounds else float("nan")
            consistent = "yes" if p_exceeds >= 0.05 else "**no**"
            seconds = sum(r["seconds"] for r in runs) / n
            lines.append(
                f"| {chapter} | {size} | {n} | {fails} | {fails / n:.3f} ([{lo:.3f}, {hi:.3f}]) "
                f"| {bound:.4g} | {consistent} | {errors} | {seconds:.1f} |"
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chapters", nargs="+", default=["01", "02", "03", "04", "05", "06"])
    parser.add_argument("--seeds", type=int, default=200, help="seeds per chapter")
    parser.add_argument("--size", choices=("smoke", "full"), default="smoke")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args()
    if not args.summary_only:
        todo = [
            (c, args.size, s)
            for c in args.chapters
            for s in range(FIRST_SEED, FIRST_SEED + args.seeds)
            if not cache_file(c, args.size, s).exists()
        ]
        with ProcessPoolExecutor(args.workers) as pool:
            futures = [pool.submit(run_one, *job) for job in todo]
            for future in tqdm(as_completed(futures), total=len(futures), desc="calibration"):
                record = future.result()
                path = cache_file(record["chapter"], record["size"], record["seed"])
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(record, indent=1))
                tmp.replace(path)
    table = summarise(args.chapters, ["smoke", "full"])
    write_readme(table)
    print(table)


if __name__ == "__main__":
    main()
