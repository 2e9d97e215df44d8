"""Chapter 5 speed-ups, measured as ratios within one run in interleaved rounds (1 thread).

1. The perceptron's hinge step: one batched ``bmm`` against the elementwise product-and-sum.
2. A jamming cell's training: all rungs in one zero-padded group (``capacity.train_padded``)
   against one group per architecture (the same trainer called once per rung).

Prints a Markdown table of min/median ratios for bench/README.md. Run from the repository:
``nice .venv/bin/python bench/bench_capacity.py``.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from asbbook import data
from asbbook.capacity import jamming, training


def perceptron_steps(YX, w, steps, use_bmm):
    P = YX.shape[1]
    for _ in range(steps):
        if use_bmm:
            m = torch.bmm(YX, w)[..., 0]
            w = w + (1.0 / P) * torch.bmm((m < 1).double()[:, None, :], YX).transpose(1, 2)
        else:
            m = (YX * w[:, None, :, 0]).sum(dim=2)
            w = w + (1.0 / P) * ((m < 1).double()[:, :, None] * YX).sum(dim=1)[..., None]
    return w


def time_it(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_perceptron(rounds):
    gen = torch.Generator().manual_seed(0)
    YX = torch.randn(100, 80, 40, generator=gen, dtype=torch.float64)
    w = torch.zeros(100, 40, 1, dtype=torch.float64)
    a = perceptron_steps(YX, w, 50, True)
    b = perceptron_steps(YX, w, 50, False)
    assert torch.allclose(a, b)
    ratios = []
    for _ in range(rounds):
        t_old = time_it(lambda: perceptron_steps(YX, w, 200, False))
        t_new = time_it(lambda: perceptron_steps(YX, w, 200, True))
        ratios.append(t_old / t_new)
    return ratios


def bench_padding(rounds, P=64, runs=12, steps=300):
    cands = jamming.architecture_ladder(8, 2, 0.5 * P, 3 * P)
    hidden = jamming.fine_rungs(cands, 1.2 * P, 1.5, 1.12)
    shapes = [(8, *h, 1) for h in hidden]
    data_sets = [data.gaussian_patterns(P, 8, seed=r) for r in range(runs)]
    X = torch.stack([d[0] for d in data_sets])
    y = torch.stack([d[1] for d in data_sets])

    def padded():
        members = [w for w in shapes for _ in range(runs)]
        w0 = training.padded_initial_weights(members, [r for _ in shapes for r in range(runs)], 0)
        return training.train_padded(
            w0, X.repeat(len(shapes), 1, 1), y.repeat(len(shapes), 1), steps=steps
        )

    def per_shape():
        out = []
        for w in shapes:
            w0 = training.padded_initial_weights([w] * runs, list(range(runs)), 0)
            out.append(training.train_padded(w0, X, y, steps=steps))
        return out

    a = padded()
    b = per_shape()
    assert (a.steps == np.concatenate([r.steps for r in b])).all()
    ratios = []
    for _ in range(rounds):
        t_old = time_it(per_shape)
        t_new = time_it(padded)
        ratios.append(t_old / t_new)
    return ratios, len(shapes)


def main():
    torch.set_num_threads(1)
    rows = []
    r = bench_perceptron(5)
    rows.append(("perceptron hinge step: bmm vs elementwise (100 datasets, P = 80, N = 40)", r))
    r, n = bench_padding(3)
    rows.append((f"jamming cell: one padded group vs {n} groups (P = 64, 12 runs)", r))
    print("| comparison (1 thread, interleaved rounds) | min speed-up | median speed-up |")
    print("|---|---|---|")
    for name, ratios in rows:
        print(f"| {name} | {min(ratios):.2f}x | {float(np.median(ratios)):.2f}x |")


if __name__ == "__main__":
    main()
