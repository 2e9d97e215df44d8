"""Far tails of the chapter-4 and chapter-6 test statistics under their own theory, by simulation.

Chapter 4 tests the coefficient of variation of ``r^1`` and the variance of ``ln r^L`` at the
book's per-row levels (about 1e-4). Both are heavy-tailed at narrow widths, so the normal law of
their z can misstate the far tail. This script draws the exact null models (``r^1`` is the mean of
``n`` iid ``relu(z)^2``; ``ln r^L`` is a sum of ``L`` iid layer factors ``ln((2/n) chi^2_K)``
with ``K ~ Bin(n, 1/2)``, ``K >= 1``) and reports how often each form of the test rejects,
against the normal rate.

Chapter 4 also tested the sample skewness and excess kurtosis of ``ln r^L`` jointly, by a chi^2
with their delta-method covariance; the script shows how far that test is from its nominal level
at smoke size (the chapter now tests the whole law by Kolmogorov-Smirnov instead).

Chapter 6 tests the symmetric starting point on a few hundred initial networks, each on its own
Gaussian dataset. The per-network means of the hinge loss and of the output's second-moment drift
share a network's weights across its ``P`` examples and inherit the long tail of the output scale;
the script simulates those networks (bias-free ReLU, He initialisation, one hidden layer, as in the
chapter) and reports the rejection rates of the z-tests on those means, and of the rank-sum test of
the first example's ``|f|`` against a fixed sample of the theory's law
(``asbbook.dynamics.initial_output_samples``) that replaced them. The figures quoted in
``bench/README.md`` (section 6) come from

    .venv/bin/python bench/null_tails.py --cv-reps 200000 --var-reps 60000 --step0-reps 40000

(a quarter of an hour on one core); smaller ``--*-reps`` give rougher tails.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from scipy import stats

from asbbook import assembly, dynamics
from asbbook.stats import sample_variance_law

THRESHOLDS = (3.0, 3.5, 3.9)


def rates(z: np.ndarray) -> str:
    return " | ".join(
        f"{(np.abs(z) > t).mean():.2e} ({2 * stats.norm.sf(t):.1e})" for t in THRESHOLDS
    )


def cv_tails(n: int, members: int, reps: int, rng) -> dict[str, np.ndarray]:
    """z of the sample CV of ``r^1``: plug-in error, the theory's error, and on ln CV."""
    cv0 = assembly.layer_cv_theory(n)
    se0 = assembly.layer_cv_null_stderr(n, members)
    out: dict[str, list] = {"CV, plug-in error": [], "ln CV, theory's error": []}
    chunk = max(1, min(reps, 2_000_000 // (members * n)))
    for start in range(0, reps, chunk):
        z = rng.standard_normal((min(chunk, reps - start), members, n))
        r = (np.maximum(z, 0) ** 2).mean(axis=2)
        m = r.mean(1)
        d = r - m[:, None]
        v = (d**2).sum(1) / (members - 1)
        m3, m4 = (d**3).mean(1), (d**4).mean(1)
        cv = np.sqrt(v) / m
        plug = (v**2 / m**4 + (m4 - v**2) / (4 * m**2 * v) - m3 / m**3) / members
        out["CV, plug-in error"].append((cv - cv0) / np.sqrt(np.clip(plug, 1e-300, None)))
        out["ln CV, theory's error"].append((np.log(cv) - np.log(cv0)) / (se0 / cv0))
    return {k: np.concatenate(v) for k, v in out.items()}


def variance_tails(n: int, depth: int, members: int, reps: int, rng) -> dict[str, np.ndarray]:
    """z of the sample variance of ``ln r^L``: plug-in error and the exact law's error."""
    shape = (16,) + (n,) * depth
    law = sample_variance_law(assembly.log_norm_cumulants_exact(shape, order=6)[1:], members)
    out: dict[str, list] = {"plug-in error": [], f"exact error (skewness {law.skewness:.3f})": []}
    chunk = max(1, min(reps, 2_000_000 // (members * depth)))
    for start in range(0, reps, chunk):
        size = (min(chunk, reps - start), members)
        total = np.zeros(size)
        for _ in range(depth):
            k = rng.binomial(n, 0.5, size=size)
            while (k == 0).any():  # the exact law is conditional on no dead layer
                dead = k == 0
                k[dead] = rng.binomial(n, 0.5, size=int(dead.sum()))
            total += np.log(2 / n * rng.chisquare(k))
        v = total.var(axis=1, ddof=1)
        d = total - total.mean(1, keepdims=True)
        m4 = (d**4).mean(1)
        plug = np.sqrt(
            np.clip(m4 / members - v**2 * (members - 3) / (members * (members - 1)), 1e-300, None)
        )
        out["plug-in error"].append((v - law.mean) / plug)
        out[f"exact error (skewness {law.skewness:.3f})"].append((v - law.mean) / law.stderr)
    return {k: np.concatenate(v) for k, v in out.items()}


def shape_tails(n: int, depth: int, members: int, reps: int, rng) -> np.ndarray:
    """chi^2 (2 dof) of the sample (skewness, excess kurtosis) of ``ln r^L`` against the exact
    values, with the delta-method covariance of ``assembly.shape_with_covariance``, returned
    as the equivalent two-sided normal deviate so that it shares the table's columns."""
    exact = np.array(assembly.log_norm_shape_exact((16,) + (n,) * depth))
    out = []
    chunk = max(1, min(reps, 2_000_000 // (members * depth)))
    for start in range(0, reps, chunk):
        total = _log_norms(n, depth, (min(chunk, reps - start), members), rng)
        d = total - total.mean(1, keepdims=True)
        powers = np.stack([d, d**2, d**3, d**4], -1)
        m = powers.mean(1)
        m2, m3, m4 = m[:, 1], m[:, 2], m[:, 3]  # m1 = 0 after centring
        g = np.stack([m3 / m2**1.5, m4 / m2**2 - 3], -1)
        jac = np.zeros((len(m), 2, 4))
        jac[:, 0, 0], jac[:, 0, 1], jac[:, 0, 2] = (
            -3 * m2 / m2**1.5,
            -1.5 * m3 / m2**2.5,
            1 / m2**1.5,
        )
        jac[:, 1, 0], jac[:, 1, 1], jac[:, 1, 3] = -4 * m3 / m2**2, -2 * m4 / m2**3, 1 / m2**2
        centred = powers - m[:, None, :]
        cov_m = np.einsum("rmi,rmj->rij", centred, centred) / ((members - 1) * members)
        cov = jac @ cov_m @ jac.transpose(0, 2, 1)
        dev = g - exact
        chi2 = np.einsum("ri,rij,rj->r", dev, np.linalg.inv(cov), dev)
        out.append(stats.norm.isf(stats.chi2.sf(chi2, 2) / 2))
    return np.concatenate(out)


def _log_norms(n: int, depth: int, size: tuple, rng) -> np.ndarray:
    """``ln r^L`` of ``size`` networks from the exact null model (no dead layer)."""
    total = np.zeros(size)
    for _ in range(depth):
        k = rng.binomial(n, 0.5, size=size)
        while (k == 0).any():
            dead = k == 0
            k[dead] = rng.binomial(n, 0.5, size=int(dead.sum()))
        total += np.log(2 / n * rng.chisquare(k))
    return total


def step0_tails(n1: int, members: int, reps: int, seed: int, P: int = 64, n0: int = 8):
    """z of chapter 6's step-0 rows at widths ``(n0, n1, 1)``: the per-network means of the
    drift and of the hinge loss (sample error), and the rank-sum of the first ``|f|``."""
    widths = (n0, n1, 1)
    theory = np.sort(np.abs(dynamics.initial_output_samples(widths, 200_000, seed=seed)))
    hinge0 = dynamics.predict_initial_margins(widths, 1_000_000, seed=seed + 1)["hinge"].value
    m = theory.size
    rank_se = math.sqrt(members * m * (members + m + 1) / 12)
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, list] = {"drift, mean z": [], "hinge, mean z": [], "first abs f, rank-sum": []}
    chunk = max(1, min(reps, 400_000 // (members * n1)))
    for start in range(0, reps, chunk):
        batch = min(chunk, reps - start) * members
        X = torch.randn(batch, P, n0, generator=gen, dtype=torch.float64)
        y = torch.randint(0, 2, (batch, P), generator=gen).double() * 2 - 1
        U = torch.randn(batch, n0, n1, generator=gen, dtype=torch.float64) * math.sqrt(2 / n0)
        v = torch.randn(batch, n1, 1, generator=gen, dtype=torch.float64) * math.sqrt(2 / n1)
        f = (torch.relu(X @ U) @ v)[..., 0]
        drift = (f * f).mean(1) / (2 * (X * X).mean(dim=(1, 2))) - 1
        hinge = torch.clamp(1 - y * f, min=0).mean(1)
        for name, sample, mean in (("drift, mean z", drift, 0.0), ("hinge, mean z", hinge, hinge0)):
            sample = sample.view(-1, members).numpy()
            se = sample.std(axis=1, ddof=1) / math.sqrt(members)
            out[name].append((sample.mean(axis=1) - mean) / se)
        first = f[:, 0].abs().numpy()
        below = np.searchsorted(theory, first, side="left")
        ties = np.searchsorted(theory, first, side="right") - below
        u = (below + ties / 2).reshape(-1, members).sum(axis=1)
        out["first abs f, rank-sum"].append((u - members * m / 2) / rank_se)
    return {k: np.concatenate(v) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cv-reps", type=int, default=20_000)
    parser.add_argument("--var-reps", type=int, default=6_000)
    parser.add_argument("--step0-reps", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    head = " | ".join(f"P(abs z > {t}) (normal)" for t in THRESHOLDS)
    print(f"| statistic | case | replicates | {head} |")
    print("|---|---|---|" + "---|" * len(THRESHOLDS))
    for name, z in cv_tails(4, 2000, args.cv_reps, rng).items():
        print(f"| {name} | n = 4, 2000 nets | {z.size} | {rates(z)} |")
    for n, depth in ((16, 3), (32, 3)):
        for name, z in variance_tails(n, depth, 2000, args.var_reps, rng).items():
            print(f"| Var ln r, {name} | n = {n}, L = {depth}, 2000 nets | {z.size} | {rates(z)} |")
    shape_reps = max(1, args.var_reps // 3)
    z = shape_tails(32, 3, 2000, shape_reps, rng)
    print(
        f"| (skewness, excess kurtosis) of ln r, chi^2 | n = 32, L = 3, 2000 nets | {z.size} | {rates(z)} |"
    )
    for n1, members, P in ((12, 200, 64), (24, 400, 128)):  # as at smoke and at full size
        for name, z in step0_tails(n1, members, args.step0_reps, args.seed, P=P).items():
            case = f"(8, {n1}, 1), P = {P}, {members} nets"
            print(f"| step 0, {name} | {case} | {z.size} | {rates(z)} |")


if __name__ == "__main__":
    main()
