"""Benchmark of the batched ensemble engine (``asbbook.ensemble``) against its real peers.

1. The engine vs PyTorch's own ensembling recipe (``torch.func.stack_module_state`` +
   ``vmap(grad(functional_call))``, updates by ``torch._foreach_add_`` or ``torch.optim.Adam``)
   and vs a per-network loop (``torch.nn`` + autograd + ``torch.optim``): the same bias-free
   ReLU MLPs, the same initial weights (``ensemble.member_weights``), hinge loss, the same
   full-batch steps. The final losses of all three are asserted to agree (float32 tolerance).
   Timed in interleaved rounds (recipe, engine, loop, recipe, engine, ...) at 1 and 2 threads;
   the ratios are per round, reported as min and median. Peak memory: ``VmHWM`` of a fresh
   subprocess per (implementation, workload), minus its value after imports and data (on CUDA:
   ``torch.cuda.max_memory_allocated``).
2. GFLOP/s of a large ensemble step against ``torch.matmul`` on square matrices (interleaved).
3. A Chapter-5 cell (random labels, the 10-rung width ladder, 3 datasets x 3 initialisations,
   Adam, 3000-step budget): the previous engine (loaded from git) against this one, with the
   opt-in levers (one call for the 3 datasets; ``pad_to``).
4. The perceptron step of ``capacity.perceptron_hinge_training`` (elementwise product and sum)
   against ``ensemble.batched_perceptron_hinge_step`` (``bmm``).

Run from the repository root (figures written into bench/README.md between the ENSEMBLE
markers; ``--no-write`` to skip):

    .venv/bin/python bench/bench_ensemble.py
    .venv/bin/python bench/bench_ensemble.py --device cuda      # same tables on a GPU
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.func import functional_call, grad, stack_module_state, vmap

from asbbook import ensemble as E
from asbbook.data import gaussian_patterns

COMMAND = ".venv/bin/python bench/bench_ensemble.py"
DTYPE = torch.float32
PREVIOUS = "5073759"  # the commit whose engine figure 3 compares against
LOSS_ATOL64 = 1e-9  # final float64 losses, engine vs recipe (losses ~0.1-1)
LOSS_ATOL32 = 1e-3  # float32: a margin within rounding of the hinge kink may flip (see README)
LR = {"gd": 0.05, "adam": 0.01}

WORKLOADS = {
    "narrow-8": dict(widths=(64, 8, 1), K=256, P=300, steps=30, optimizer="gd"),
    "narrow-32": dict(widths=(64, 32, 1), K=256, P=300, steps=30, optimizer="gd"),
    "narrow-32-adam": dict(widths=(64, 32, 1), K=256, P=300, steps=30, optimizer="adam"),
    "n64-K64": dict(widths=(64, 64, 1), K=64, P=300, steps=30, optimizer="gd"),
    "n128-depth2": dict(widths=(64, 128, 128, 1), K=64, P=300, steps=10, optimizer="gd"),
}
LOOP_ON = ("narrow-32", "n128-depth2")  # workloads that also run the per-network loop


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


# ---------------------------------------------------------------------------------------------
# The three implementations of one workload; each returns the final per-member hinge losses
# ---------------------------------------------------------------------------------------------


def data(w: dict, device: str, dtype: torch.dtype = DTYPE):
    return gaussian_patterns(w["P"], w["widths"][0], seed=0, dtype=dtype, device=device)


def hinge(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.relu(1 - y * f).mean(dim=-1)


def mlp(weights: list[torch.Tensor]) -> torch.nn.Sequential:
    """A bias-free ReLU MLP holding ``weights``."""
    layers: list[torch.nn.Module] = []
    for w in weights:
        linear = torch.nn.Linear(w.shape[1], w.shape[0], bias=False, device=w.device, dtype=w.dtype)
        with torch.no_grad():
            linear.weight.copy_(w)
        layers += [linear, torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def specs(w: dict) -> list[E.MemberSpec]:
    return E.member_specs(w["widths"], w["K"])


def run_engine(w: dict, X, y, device: str) -> torch.Tensor:
    res = E.train_ensemble(
        specs(w), X, y, optimizer=w["optimizer"], lr=LR[w["optimizer"]], steps=w["steps"],
        stop_at_zero_hinge=False, dtype=X.dtype, device=device,
    )  # fmt: skip
    sync(device)
    return torch.as_tensor(res.loss, dtype=X.dtype)


def run_recipe(w: dict, X, y, device: str) -> torch.Tensor:
    """PyTorch's model-ensembling recipe (torch.func tutorial): stacked parameters, one
    ``vmap(grad(functional_call))`` per step; GD by ``_foreach_add_``, Adam by torch.optim."""
    models = [mlp(E.member_weights(s, 0, X.dtype, device)) for s in specs(w)]
    params, _ = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def loss(p, X, y):
        return hinge(functional_call(base, p, (X,))[:, 0], y)

    grad_fn = vmap(grad(loss), in_dims=(0, None, None))
    names, lr = list(params), LR[w["optimizer"]]
    tensors = [params[n].detach().requires_grad_(w["optimizer"] == "adam") for n in names]
    adam = torch.optim.Adam(tensors, lr=lr) if w["optimizer"] == "adam" else None
    for _ in range(w["steps"]):
        grads = grad_fn(dict(zip(names, tensors, strict=True)), X, y)
        if adam is None:
            torch._foreach_add_(tensors, [grads[n] for n in names], alpha=-lr)
        else:
            for t, n in zip(tensors, names, strict=True):
                t.grad = grads[n]
            adam.step()
    with torch.no_grad():
        p = dict(zip(names, tensors, strict=True))
        out = vmap(lambda q: hinge(functional_call(base, q, (X,))[:, 0], y))(p)
    sync(device)
    return out.cpu()


def run_loop(w: dict, X, y, device: str) -> torch.Tensor:
    """One ``torch.nn`` module per net, autograd, ``torch.optim.SGD`` or ``Adam``."""
    losses = []
    for s in specs(w):
        model = mlp(E.member_weights(s, 0, X.dtype, device))
        make = torch.optim.SGD if w["optimizer"] == "gd" else torch.optim.Adam
        opt = make(model.parameters(), lr=LR[w["optimizer"]])
        for _ in range(w["steps"]):
            opt.zero_grad()
            hinge(model(X)[:, 0], y).backward()
            opt.step()
        with torch.no_grad():
            losses.append(hinge(model(X)[:, 0], y))
    sync(device)
    return torch.stack(losses).cpu()


def run_matmul_floor(w: dict, X, y, device: str) -> None:
    """Only the matrix products of the workload, with the engine's shapes: per step and layer
    the forward ``bmm``, the weight-gradient ``bmm`` and (above the first layer) the backprop
    ``bmm``, into preallocated buffers. No activation, loss, optimiser or bookkeeping: the
    time no engine that computes these products with ``bmm`` can beat."""
    K, P, widths = w["K"], w["P"], w["widths"]
    ws = [
        torch.randn(K, b, a, dtype=X.dtype, device=device)
        for a, b in zip(widths[:-1], widths[1:], strict=True)
    ]
    hs = [X.expand(K, -1, -1)] + [
        torch.randn(K, P, n, dtype=X.dtype, device=device) for n in widths[1:-1]
    ]
    zs = [torch.empty(K, P, n, dtype=X.dtype, device=device) for n in widths[1:]]
    gs = [torch.empty_like(q) for q in ws]
    for _ in range(w["steps"]):
        for layer, q in enumerate(ws):
            torch.bmm(hs[layer], q.transpose(1, 2), out=zs[layer])
        for layer in range(len(ws) - 1, -1, -1):
            torch.bmm(zs[layer].transpose(1, 2), hs[layer], out=gs[layer])
            if layer > 0:
                torch.bmm(zs[layer], ws[layer], out=hs[layer])
    sync(device)


IMPLS = {"recipe": run_recipe, "engine": run_engine, "loop": run_loop}
TIMED_ONLY = {"floor": run_matmul_floor}  # timed in the rounds; no losses, no memory


def worker(impl: str, name: str, n_threads: int, device: str) -> dict:
    """Run one implementation once in THIS (fresh) process and report its peak memory."""
    torch.set_num_threads(n_threads)
    w = WORKLOADS[name]
    X, y = data(w, device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        IMPLS[impl](w, X, y, device)
        return dict(mbytes=(torch.cuda.max_memory_allocated() - base) / 1e6)
    before = rss_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the current RSS
    IMPLS[impl](w, X, y, device)
    return dict(mbytes=(rss_kib("VmHWM") - before) / 1e3)


def rss_kib(field: str) -> int:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak since the last reset) in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_memory(impl: str, name: str, device: str) -> float:
    """MB of peak memory above the process's state after imports and data, in a fresh process."""
    cmd = [sys.executable, __file__, "--worker", impl, name, "--device", device]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=os.environ)
    return json.loads(out.stdout.strip().splitlines()[-1])["mbytes"]


def impls(name: str) -> list[str]:
    return ["recipe", "engine"] + (["loop"] if name in LOOP_ON else [])


def compare(name: str, n_threads: int, rounds: int, device: str) -> dict:
    """Interleaved rounds of the implementations on one workload; final losses asserted equal."""
    w = WORKLOADS[name]
    X, y = data(w, device)
    names = impls(name)
    torch.set_num_threads(n_threads)
    times: dict[str, list[float]] = {i: [] for i in names}
    losses = {i: IMPLS[i](w, X, y, device) for i in names}  # warm-up, float32 agreement
    gaps = {i: (losses[i] - losses["recipe"]).abs().max().item() for i in names[1:]}
    assert max(gaps.values()) <= LOSS_ATOL32, f"{name}: final float32 losses differ, {gaps}"
    X64, y64 = data(w, device, torch.float64)
    gap64 = (run_engine(w, X64, y64, device) - run_recipe(w, X64, y64, device)).abs().max().item()
    assert gap64 <= LOSS_ATOL64, f"{name}: final float64 losses differ by {gap64}"
    timed = {**{i: IMPLS[i] for i in names}, **TIMED_ONLY}
    times["floor"] = []
    for _ in range(rounds):
        for i, run in timed.items():
            start = time.perf_counter()
            run(w, X, y, device)
            times[i].append(time.perf_counter() - start)
    ratios = {i: [a / b for a, b in zip(times[i], times["engine"], strict=True)] for i in timed}
    return dict(
        name=name, threads=n_threads, times=times, ratios=ratios, gaps=gaps, gap64=gap64,
        names=names,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# 2: GFLOP/s of a large ensemble step vs square matmul
# ---------------------------------------------------------------------------------------------

LARGE = dict(widths=(256, 512, 512, 1), K=8, P=512)


def throughput(n_threads: int, rounds: int, device: str) -> dict:
    """Engine steps and square matmuls, interleaved; the fastest of each is kept."""
    torch.set_num_threads(n_threads)
    widths, K, P = LARGE["widths"], LARGE["K"], LARGE["P"]
    X, y = gaussian_patterns(P, widths[0], seed=1, dtype=DTYPE, device=device)
    members = tuple(E.member_specs(widths, K))
    config = dict(loss="hinge", lr=0.05, steps=10**6, betas=(0.9, 0.999), eps=1e-8)
    config.update(dtype=DTYPE, stop=False, optimizer="gd", pad_to=None)
    (group,) = E._make_groups(members, 0, config, X, y, None)
    outcome = E._Outcome(members)
    a = torch.randn(2048, 2048, dtype=DTYPE, device=device)
    step, square = [], []
    for t in range(4 * rounds):
        sync(device)
        start = time.perf_counter()
        E._advance(group, t, config=config, outcome=outcome, recorder=None)
        sync(device)
        step.append(time.perf_counter() - start)
        start = time.perf_counter()
        a @ a
        sync(device)
        square.append(time.perf_counter() - start)
    achieved = K * E.flops_per_step(widths, P) / min(step) / 1e9
    peak = 2 * 2048**3 / min(square) / 1e9
    return dict(threads=n_threads, seconds=min(step), achieved=achieved, peak=peak)


# ---------------------------------------------------------------------------------------------
# 3: a Chapter-5 cell, previous engine vs this one
# ---------------------------------------------------------------------------------------------


def previous_engine():
    """``asbbook/ensemble.py`` of commit ``PREVIOUS``, imported under another name."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(
        ["git", "show", f"{PREVIOUS}:asbbook/ensemble.py"],
        cwd=root, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "ensemble_previous.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("ensemble_previous", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["ensemble_previous"] = module
    spec.loader.exec_module(module)
    return module


CELL = dict(P=128, n_inputs=8, n_datasets=3, n_init=3, steps=3000, pad_to=16)


def chapter5_cell(rounds: int, device: str) -> dict:
    from asbbook import phase

    torch.set_num_threads(1)
    previous, c = previous_engine(), CELL
    hidden = phase.width_ladder(c["n_inputs"], 2, 0.25 * c["P"], 5 * c["P"], 10)
    cells = [
        phase.cell_data(dict(dataset="gaussian", P=c["P"], n_inputs=c["n_inputs"], data_seed=d))
        for d in range(c["n_datasets"])
    ]
    cells = [(X.to(device), y.to(device)) for X, y in cells]
    shapes = [(c["n_inputs"], *h, 1) for h in hidden]
    kw = dict(optimizer="adam", lr=0.01, steps=c["steps"], device=device)

    def members(module, d):
        return [module.MemberSpec(s, d * c["n_init"] + i) for s in shapes for i in range(3)]

    def per_cell(module):
        return [module.train_ensemble(members(module, d), *cells[d], **kw) for d in range(3)]

    def merged(pad_to):
        all_members = [m for d in range(c["n_datasets"]) for m in members(E, d)]
        index = [d for d in range(c["n_datasets"]) for _ in members(E, d)]
        X, y = torch.stack([X for X, _ in cells]), torch.stack([y for _, y in cells])
        return [E.train_ensemble(all_members, X, y, datasets=index, pad_to=pad_to, **kw)]

    runs = {
        "previous": lambda: per_cell(previous),
        "engine": lambda: per_cell(E),
        "one call": lambda: merged(None),
        f"one call, pad_to={c['pad_to']}": lambda: merged(c["pad_to"]),
    }
    times: dict[str, list[float]] = {k: [] for k in runs}
    results = {}
    for _ in range(rounds):
        for key, fn in runs.items():
            start = time.perf_counter()
            results[key] = fn()
            times[key].append(time.perf_counter() - start)
    steps = {k: [int(s) for r in v for s in r.steps] for k, v in results.items()}
    same = {k: steps[k] == steps["previous"] for k in runs}
    bitwise = all(
        torch.equal(a, b)
        for r_old, r_new in zip(results["previous"], results["engine"], strict=True)
        for wa, wb in zip(r_old.weights, r_new.weights, strict=True)
        for a, b in zip(wa, wb, strict=True)
    )
    return dict(times=times, same_steps=same, bitwise=bitwise, hidden=hidden)


# ---------------------------------------------------------------------------------------------
# 4: the perceptron step
# ---------------------------------------------------------------------------------------------


def perceptron(rounds: int, device: str) -> dict:
    torch.set_num_threads(1)
    T, P, N, lr = 100, 80, 40, 1.0
    g = torch.Generator().manual_seed(0)
    YX = torch.randn(T, P, N, generator=g, dtype=torch.float64).to(device)
    w = 0.1 * torch.randn(T, N, generator=g, dtype=torch.float64).to(device)

    def elementwise():  # the step of capacity.perceptron_hinge_training
        margins = (YX * w[:, None, :]).sum(dim=2)
        active = margins < 1
        return margins, w + (lr / P) * (active.to(YX.dtype)[:, :, None] * YX).sum(dim=1)

    def batched():
        return E.batched_perceptron_hinge_step(w, YX, lr)

    (_, w1), (_, w2) = elementwise(), batched()
    torch.testing.assert_close(w1, w2, rtol=1e-12, atol=1e-12)
    times: dict[str, list[float]] = {"elementwise": [], "bmm": []}
    for _ in range(rounds * 20):
        for key, fn in (("elementwise", elementwise), ("bmm", batched)):
            start = time.perf_counter()
            fn()
            sync(device)
            times[key].append(time.perf_counter() - start)
    return dict(times=times, T=T, P=P, N=N)


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def machine(device: str) -> str:
    cpu = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    gpu = f", GPU {torch.cuda.get_device_name()}" if device == "cuda" else ""
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs{gpu}, torch {torch.__version__}, "
        f"Python {sys.version.split()[0]}"
    )


def load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def ceiling(r: dict, peaks: dict) -> float:
    """Recipe time over the time the workload's matmul FLOPs take at the square-matmul peak:
    the largest speed-up over the recipe that any engine could show."""
    w = WORKLOADS[r["name"]]
    flops = w["K"] * w["steps"] * E.flops_per_step(w["widths"], w["P"])
    return med(r["times"]["recipe"]) / (flops / (peaks[r["threads"]] * 1e9))


def table1(rows: list[dict], memory: dict, peaks: dict) -> list[str]:
    lines = [
        "| workload | threads | recipe (s) | engine (s) | recipe / engine, min / median "
        "| ceiling: peak, bmm floor | engine / bmm floor | loop / engine, min / median "
        "| final-loss gap vs recipe: engine, loop (float32); engine (float64) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t, q = r["times"], r["ratios"]
        loop = f"{min(q['loop']):.1f}x / {med(q['loop']):.1f}x" if "loop" in q else "not run"
        gaps = ", ".join(f"{r['gaps'][i]:.1e}" for i in r["names"][1:])
        lines.append(
            f"| {r['name']} | {r['threads']} | {med(t['recipe']):.3f} | {med(t['engine']):.3f} "
            f"| **{min(q['recipe']):.2f}x** / {med(q['recipe']):.2f}x "
            f"| {ceiling(r, peaks):.1f}x, {med(t['recipe']) / med(t['floor']):.1f}x "
            f"| {med(t['engine']) / med(t['floor']):.2f} | {loop} | {gaps}; {r['gap64']:.0e} |"
        )
    lines += [
        "",
        "| workload | recipe peak MB | engine peak MB | engine / recipe | loop peak MB |",
        "|---|---|---|---|---|",
    ]
    for name in WORKLOADS:
        m = memory[name]
        loop = f"{m['loop']:.0f}" if "loop" in m else "not run"
        lines.append(
            f"| {name} | {m['recipe']:.0f} | {m['engine']:.0f} "
            f"| **{m['engine'] / max(m['recipe'], 1e-9):.2f}** | {loop} |"
        )
    return lines


def workload_lines() -> list[str]:
    return [
        f"- `{k}`: K = {w['K']} nets {w['widths']}, P = {w['P']}, {w['steps']} "
        f"{w['optimizer'].upper()} steps"
        for k, w in WORKLOADS.items()
    ]


def report(info, meta, f1, memory, f2, f3, f4) -> str:
    c = CELL
    t3, t4 = f3["times"], f4["times"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `bench/bench_ensemble.py`; do not edit by hand. Reproduce with",
        "",
        f"    {COMMAND}{meta['args']}",
        "",
        f"Machine: {info}; device {meta['device']}. Load average {meta['load_start']} at the "
        f"start and {meta['load_end']} at the end (other jobs share the 2 cores); run time "
        f"{meta['seconds']:.0f} s. float32 unless stated. Timings are interleaved rounds in one "
        "process; compare the ratios (per round, min and median over "
        f"{meta['rounds']} rounds), not the absolute times.",
        "",
        "## 1. Engine vs the torch.func recipe and a per-network loop",
        "",
        "The same bias-free ReLU MLPs from the same initial weights (`ensemble.member_weights`), "
        "hinge loss, full batch, every member trained for every step (`stop_at_zero_hinge` "
        "off). *Recipe*: `stack_module_state` + `vmap(grad(functional_call))`, GD by "
        "`torch._foreach_add_`, Adam by `torch.optim.Adam`. *Loop*: one `torch.nn` module per "
        "net, autograd, `torch.optim`. Whole runs (weights built, trained, final losses "
        "evaluated). Agreement is asserted on the final per-member losses: in float64 the "
        f"engine's are within {LOSS_ATOL64:g} of the recipe's; in float32 (the timed runs) "
        f"engine and loop are within {LOSS_ATOL32:g}, a looser bound because a margin within "
        "rounding of the hinge kink (y f = 1) takes the other side in one implementation now "
        "and then, and GD amplifies that. *Ceiling*: the recipe's time over the time the "
        "workload's matmul FLOPs would take at the square-matmul peak of section 2, and (*bmm "
        "floor*) over the time of the workload's matrix products alone, `torch.bmm` with the "
        "engine's shapes into preallocated buffers and nothing else: the largest speed-up an "
        "engine built on `bmm` could show without skipping work. *Engine / bmm floor* is how "
        "close the engine comes to that floor (1 would be all matmul). Workloads:",
        "",
        *workload_lines(),
        "",
        *table1(f1, memory, {r["threads"]: r["peak"] for r in f2}),
        "",
        "Memory: in a fresh Python process per (implementation, workload), 1 thread, the peak "
        "resident set during one run (`VmHWM` of /proc/self/status, reset just before the run "
        "by writing 5 to /proc/self/clear_refs) minus the resident set after imports and data "
        "(`VmRSS`); on CUDA `torch.cuda.max_memory_allocated` above the data.",
        "",
        "## 2. Throughput of a large ensemble step",
        "",
        f"K = {LARGE['K']} nets {LARGE['widths']}, P = {LARGE['P']}, GD, the engine's own step "
        "(`ensemble._advance`); matmul FLOPs (`ensemble.flops_per_step`). Peak: `torch.matmul` "
        "of two 2048 x 2048 float32 matrices, timed alternately with the steps; the fastest "
        "of each is kept.",
        "",
        "| threads | s / step | ensemble GFLOP/s | matmul GFLOP/s | fraction of peak |",
        "|---|---|---|---|---|",
        *[
            f"| {r['threads']} | {r['seconds']:.3f} | {r['achieved']:.1f} | {r['peak']:.1f} "
            f"| **{100 * r['achieved'] / r['peak']:.0f}%** |"
            for r in f2
        ],
        "",
        "## 3. A Chapter-5 cell: previous engine vs this one",
        "",
        f"Random labels, P = {c['P']}, n_0 = {c['n_inputs']}, hidden widths "
        f"{[h[0] for h in f3['hidden']]}, {c['n_datasets']} datasets x {c['n_init']} "
        f"initialisations, Adam (lr 0.01), budget {c['steps']} steps, float64, 1 thread "
        f"(what `phase.random_label_cell` does, one call per dataset). *Previous*: the "
        f"engine of commit {PREVIOUS}. *One call*: the three datasets in one `train_ensemble` "
        "call (`X` of shape (D, P, n_0), `datasets=`); *pad_to*: narrow shapes padded into "
        "one group. Numbers are bitwise those of the previous engine for *engine* "
        f"(final weights compared: {f3['bitwise']}) and *one call*; with *pad_to* the "
        "rounding differs.",
        "",
        "| run | time (s), median | speed-up vs previous, min / median | same steps as previous |",
        "|---|---|---|---|",
        *[
            f"| {k} | {med(v):.2f} | **{min(a / b for a, b in zip(t3['previous'], v, strict=True)):.2f}x** / "
            f"{med([a / b for a, b in zip(t3['previous'], v, strict=True)]):.2f}x | {f3['same_steps'][k]} |"
            for k, v in t3.items()
        ],
        "",
        "## 4. The perceptron step",
        "",
        f"T = {f4['T']} trials, P = {f4['P']}, N = {f4['N']}, float64, 1 thread: the step of "
        "`capacity.perceptron_hinge_training` (elementwise product and sum) against "
        "`ensemble.batched_perceptron_hinge_step` (`bmm`); same result to 1e-12. "
        f"Elementwise {1e6 * med(t4['elementwise']):.0f} us, bmm {1e6 * med(t4['bmm']):.0f} us "
        "(medians): **"
        f"{med([a / b for a, b in zip(t4['elementwise'], t4['bmm'], strict=True)]):.1f}x** "
        "(median of per-round ratios).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-write", action="store_true", help="do not write bench/README.md")
    parser.add_argument("--worker", nargs=2, metavar=("IMPL", "WORKLOAD"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker, 1, args.device)))
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    start, load_start = time.perf_counter(), load()
    threads = [1] if args.device == "cuda" else args.threads
    f1 = [compare(n, t, args.rounds, args.device) for t in threads for n in WORKLOADS]
    memory = {n: {i: peak_memory(i, n, args.device) for i in impls(n)} for n in WORKLOADS}
    f2 = [throughput(t, args.rounds, args.device) for t in threads]
    f3 = chapter5_cell(max(2, args.rounds // 2), args.device)
    f4 = perceptron(args.rounds, args.device)
    extra = "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    meta = dict(
        load_start=load_start, load_end=load(), seconds=time.perf_counter() - start,
        rounds=args.rounds, device=args.device, args=extra,
    )  # fmt: skip
    text = report(machine(args.device), meta, f1, memory, f2, f3, f4)
    print(text)
    if not args.no_write and args.device == "cpu":
        write_between_markers(Path(__file__).resolve().parent / "README.md", text)
    return 0


BEGIN, END = "<!-- ENSEMBLE-BEGIN -->", "<!-- ENSEMBLE-END -->"


def write_between_markers(readme: Path, text: str) -> None:
    """Replace this script's block of ``readme`` (between ``BEGIN`` and ``END``), leaving the
    rest (e.g. ``bench/calibrate.py``'s block) alone; without markers the block goes first."""
    block = f"{BEGIN}\n{text.rstrip()}\n{END}"
    old = readme.read_text() if readme.exists() else ""
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + block + old[old.index(END) + len(END) :]
    else:
        calibration = (
            old[old.index("<!-- CALIBRATION-BEGIN -->") :] if "CALIBRATION-BEGIN" in old else ""
        )
        new = block + "\n\n" + calibration
    readme.write_text(new.rstrip() + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
