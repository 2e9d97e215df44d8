"""The experiments of chapter 4 and their figures, so that the chapter's cells stay short.

Each runner returns plain arrays or tensors (on the CPU); each ``figure_*`` draws one numbered
figure of the chapter and returns the matplotlib figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.ticker import NullFormatter, ScalarFormatter
from scipy import stats as sps

from asbbook import validation
from asbbook.assembly import measure, theory
from asbbook.order import preactivation_variance
from asbbook.plotting import measured_points, new_figure, theory_line
from asbbook.stats import Estimate, mean_with_stderr, variance_with_stderr


def _width_axis(ax, widths) -> None:
    """A log-scaled width axis labelled at the widths themselves."""
    ax.set_xscale("log")
    ax.set_xticks(sorted(set(int(n) for n in widths)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())


def _bytes_guard(name: str, n_members: int, n_values: int) -> None:
    validation.check_memory(name, 8.0 * n_members * n_values)


def cv_experiment(x, widths: Sequence[int], n_members: int, **kwargs) -> np.ndarray:
    """CV of ``r^1`` across ``n_members`` one-layer networks ``(n_0, n)`` for every ``n`` in
    ``widths``: rows ``(cv, stderr)``."""
    x = validation.check_inputs(x)
    _bytes_guard("n_members", n_members, max(widths))
    rows = []
    for n in widths:
        z = measure.sample_reduced(x, (x.shape[1], n), n_members, lambda zs: zs[0], **kwargs)
        rows.append([float(v) for v in measure.layer_cv(z.cpu())])
    return np.array(rows)


def log_profiles(x, shapes: dict, **kwargs) -> dict:
    """``shape -> (members, L)`` tensor of ``ln(r^l / r^0)``, ``l = 1..L``, for each
    ``{widths: n_members}`` of ``shapes`` (Gaussian ensembles, :func:`measure.sample_reduced`)."""
    x = validation.check_inputs(x)
    for shape, members in shapes.items():
        _bytes_guard("n_members", members, len(shape))
    return {
        shape: measure.sample_reduced(
            x, shape, members, lambda zs: measure.log_norm_profile(zs, x)[:, 0, :], **kwargs
        ).cpu()
        for shape, members in shapes.items()
    }


def log_moments(ratio) -> tuple[Estimate, Estimate, int]:
    """Mean and variance of ``ln(r^L / r^0)`` over the networks with no dead layer, with
    standard errors, and the number of dead networks."""
    ratio = validation.as_float_tensor("ratio", ratio, ndim=1, allow_nonfinite=True)
    ok = measure.alive(ratio)
    kept = ratio[ok]
    mean = Estimate(float(kept.mean()), float(kept.std() / kept.numel() ** 0.5))
    return mean, variance_with_stderr(kept).item(), int((~ok).sum())


def kernel_experiment(X, widths: Sequence[int], depth: int, n_members: int, **kwargs) -> dict:
    """``n -> (members, depth + 1, 3)`` Gram entries ``(q_aa, q_bb, q_ab)`` of the two inputs
    ``X`` at every layer of ``depth``-layer networks of width ``n`` (:func:`measure.pair_grams`)."""
    X = validation.check_inputs(X)
    depth = validation.check_int("depth", depth, minimum=1)
    _bytes_guard("n_members", n_members, 3 * (depth + 1))
    return {
        n: measure.sample_reduced(
            X,
            (X.shape[1],) + (n,) * depth,
            n_members,
            lambda zs: measure.pair_grams(zs, X),
            **kwargs,
        ).cpu()
        for n in widths
    }


def micro_macro_experiment(x, width: int, depth: int, sigma2_values, n_members: int, **kwargs):
    """``sigma2 -> {"micro", "macro"}`` ``(members, depth)`` tensors (:func:`measure.micro_macro`)."""
    x = validation.check_inputs(x)
    _bytes_guard("n_members", n_members, 2 * depth)
    shape = (x.shape[1],) + (width,) * depth
    return {
        s2: {
            key: value.cpu()
            for key, value in measure.sample_reduced(
                x, shape, n_members, measure.micro_macro, sigma2=s2, **kwargs
            ).items()
        }
        for s2 in sigma2_values
    }


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


def figure_cv(widths, cv, fit):
    """CV of ``r^1`` against width on log-log axes, and its ratio to ``sqrt(5/n)``."""
    widths = np.asarray(widths)
    fig, (ax, ax_ratio) = new_figure(ncols=2, width=4.6)
    n_fine = np.geomspace(widths[0], widths[-1], 100)
    theory_line(ax, n_fine, np.sqrt(5 / n_fine), label=r"theory $\sqrt{5/n}$")
    ax.plot(
        n_fine,
        fit(n_fine),
        ls="--",
        color="C1",
        lw=1,
        label=f"fit: ${fit.prefactor:.3f}\\,n^{{{fit.slope:.3f}}}$",
    )
    measured_points(ax, widths, cv[:, 0], cv[:, 1], color="C0", label="measured ± 1 SE")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="layer width $n$",
        ylabel=r"coefficient of variation of $r^1$",
    )
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(ScalarFormatter())
    ax.legend()
    pred = np.sqrt(5 / widths)
    ax_ratio.axhline(1, color="black", lw=1.4, label="theory")
    measured_points(
        ax_ratio, widths, cv[:, 0] / pred, cv[:, 1] / pred, color="C0", label="measured ± 1 SE"
    )
    _width_axis(ax_ratio, widths)
    ax_ratio.set(xlabel="layer width $n$", ylabel=r"measured CV $/\ \sqrt{5/n}$")
    ax_ratio.legend()
    fig.tight_layout()
    return fig


def figure_log_norm(points: dict):
    """``points[(n, L)] = (mean Estimate, variance Estimate)``: the variance against ``L/n``
    with the exact and leading laws, its relative excess over ``5L/n`` against ``n``, and the
    mean against ``L/n`` with the exact law and ``-5L/(2n)``."""
    fig, (ax_var, ax_rel, ax_mean) = new_figure(ncols=3, width=3.7)
    widths = sorted({n for n, _ in points})
    color = {n: f"C{i}" for i, n in enumerate(widths)}
    grid = np.linspace(0, 1.05 * max(d / n for n, d in points), 50)
    theory_line(ax_var, grid, 5 * grid, label=r"leading $5L/n$")
    theory_line(ax_mean, grid, -2.5 * grid, label=r"leading $-5L/(2n)$")
    for n in widths:
        ax_var.plot(
            grid,
            n * theory.layer_log_variance_exact(n) * grid,
            ls="--",
            lw=1,
            color=color[n],
            label=f"exact, $n = {n}$",
        )
        ax_mean.plot(grid, n * theory.layer_log_mean_exact(n) * grid, ls="--", lw=1, color=color[n])
    for (n, depth), (mean, var) in points.items():
        lead = 5 * depth / n
        measured_points(ax_var, depth / n, var.value, var.stderr, color=color[n], label=None)
        measured_points(ax_mean, depth / n, mean.value, mean.stderr, color=color[n], label=None)
        measured_points(
            ax_rel,
            n * (1 + 0.01 * depth),
            100 * (var.value / lead - 1),
            100 * var.stderr / lead,
            color=color[n],
            label=None,
        )
    n_grid = np.unique(np.geomspace(min(widths) / 1.5, max(widths) * 1.5, 60).astype(int))
    theory_line(
        ax_rel,
        n_grid,
        [100 * (n * theory.layer_log_variance_exact(n) / 5 - 1) for n in n_grid],
        label=r"exact $n\,v(n)/5 - 1$",
    )
    ax_rel.plot(
        n_grid,
        100 * theory.FINITE_WIDTH_COEFFICIENT / 5 / n_grid,
        ls=":",
        color="grey",
        label=r"$37/(10n)$",
    )
    ax_rel.axhline(0, color="black", lw=0.8)
    ax_var.set(xlabel="$L/n$", ylabel=r"$\operatorname{Var}\,\ln(r^L/r^0)$")
    _width_axis(ax_rel, widths)
    ax_rel.set(xlabel="width $n$", ylabel=r"excess over $5L/n$ (%)")
    ax_mean.set(xlabel="$L/n$", ylabel=r"$\mathbb{E}\,\ln(r^L/r^0)$")
    for ax in (ax_var, ax_rel, ax_mean):
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def figure_qq(samples: dict):
    """Normal QQ plots of standardised ``ln(r^L / r^0)``: ``samples[label] = 1-d array``."""
    fig, axes = new_figure(ncols=len(samples), width=3.6, height=3.6)
    for ax, (label, values) in zip(axes, samples.items(), strict=True):
        v = np.sort(np.asarray(values, dtype=np.float64))
        z = (v - v.mean()) / v.std(ddof=1)
        q = sps.norm.ppf((np.arange(1, v.size + 1) - 0.5) / v.size)
        ax.plot(q, z, ".", ms=2, color="C0", label="networks")
        lim = [q[0], q[-1]]
        theory_line(ax, lim, lim, label="Gaussian")
        ax.set(xlabel="normal quantile", ylabel=r"standardised $\ln(r^L/r^0)$", title=label)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def figure_kurtosis(kappas, measured, prediction):
    """``Var ln(r^L/r^0)`` against the weights' excess kurtosis: measured Estimates and the
    line ``prediction(kappa)``."""
    fig, (ax,) = new_figure(width=5.0, height=3.6)
    grid = np.linspace(-2.0, 0.4, 50)
    theory_line(ax, grid, [prediction(k) for k in grid], label="exact Gaussian + kurtosis term")
    ax.axhline(prediction(0.0), color="grey", ls=":", label="Gaussian exact law")
    for (name, kappa), est in zip(kappas.items(), measured, strict=True):
        measured_points(ax, kappa, est.value, est.stderr, label=f"{name}, ± 1 SE")
    ax.set(xlabel=r"weight excess kurtosis $\kappa$", ylabel=r"$\operatorname{Var}\,\ln(r^L/r^0)$")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def figure_correlation(rho0: float, cosines: dict):
    """``cosines[n] = (K, L+1)`` single-network cosines: their mean against the layer with the
    map's iterates ``f^l(rho0)``, and ``n Var rho^L`` against ``n`` (flat for a ``1/n`` law)."""
    fig, (ax, ax_var) = new_figure(ncols=2, width=4.6)
    depth = next(iter(cosines.values())).shape[1] - 1
    layers = np.arange(depth + 1)
    theory_line(ax, layers, theory.correlation_map_iterates(rho0, depth), label=r"$f^l(\rho^0)$")
    ns, scaled, scaled_se = [], [], []
    for i, (n, c) in enumerate(cosines.items()):
        c = np.asarray(c, dtype=np.float64)
        c = c[np.isfinite(c).all(axis=1)]
        se = c.std(axis=0, ddof=1) / np.sqrt(c.shape[0])
        measured_points(
            ax,
            layers + 0.05 * i,
            c.mean(axis=0),
            se,
            color=f"C{i}",
            label=f"$n = {n}$, mean ± 1 SE",
        )
        var = variance_with_stderr(torch.as_tensor(c[:, -1])).item()
        ns.append(n)
        scaled.append(n * var.value)
        scaled_se.append(n * var.stderr)
    ax.set(xlabel="layer $l$", ylabel=r"cosine $\rho^l$ of the two inputs")
    ax.legend(fontsize=8)
    measured_points(ax_var, ns, scaled, scaled_se, color="C0", label="measured ± 1 SE")
    _width_axis(ax_var, ns)
    ax_var.set(
        xlabel="width $n$",
        ylabel=rf"$n\,\operatorname{{Var}}\,\rho^{{{depth}}}$ across networks",
    )
    ax_var.set_ylim(bottom=0)  # a 1/n law is a flat line; start at 0 to judge its flatness
    ax_var.legend(fontsize=8)
    fig.tight_layout()
    return fig


def figure_micro_macro(selfsim: dict, r0: float):
    """One neuron's mean ``(z^l_1)^2`` and single networks' layer averages against the
    recursion ``q^l = 2 r^0 (sigma^2/2)^l``, for every ``sigma^2``."""
    fig, (ax_micro, ax_macro) = new_figure(ncols=2, width=4.6, sharey=True)
    for i, (s2, runs) in enumerate(selfsim.items()):
        depth = runs["micro"].shape[1]
        layers = np.arange(1, depth + 1)
        q = preactivation_variance(r0, s2, depth)
        micro = mean_with_stderr(runs["micro"])
        low, high = np.quantile(runs["macro"].numpy(), [0.16, 0.84], axis=0)
        for ax in (ax_micro, ax_macro):
            theory_line(ax, layers, q, label=r"$2r^0(\sigma^2/2)^l$" if i == 0 else None)
        measured_points(
            ax_micro,
            layers,
            micro.value,
            micro.stderr,
            color=f"C{i}",
            label=f"$\\sigma^2 = {s2:g}$, mean ± 1 SE",
        )
        ax_macro.fill_between(
            layers,
            low,
            high,
            color=f"C{i}",
            alpha=0.25,
            lw=0,
            label=f"$\\sigma^2 = {s2:g}$, networks 16-84%",
        )
    ax_micro.set(
        yscale="log",
        xlabel="layer $l$",
        ylabel="second moment of the pre-activations",
        title=r"micro: one neuron, $\mathbb{E}(z^l_1)^2$",
    )
    ax_macro.set(xlabel="layer $l$", title=r"macro: one network's $\overline{(z^l)^2}$")
    ax_micro.legend(fontsize=8)
    ax_macro.legend(fontsize=8)
    fig.tight_layout()
    return fig
