"""The chapter's figures of the jamming sweeps (matplotlib, through ``asbbook.plotting``)."""

from __future__ import annotations

import numpy as np

from asbbook.plotting import measured_points, new_figure, theory_line

LOSS_LABELS = {"hinge": "linear hinge", "quadratic_hinge": "quadratic hinge"}


def jamming_fractions(summary, sizes):
    """Fraction of runs at zero loss against ``N / P``: one panel per loss and depth."""
    keys = summary.columns
    losses = sorted({k[0] for k in keys})
    depths = sorted({k[1] for k in keys})
    fig, axes = new_figure(nrows=len(losses), ncols=len(depths), width=3.3, height=2.8)
    for i, loss in enumerate(losses):
        for j, d in enumerate(depths):
            ax = axes[i * len(depths) + j]
            for c, P in enumerate(sizes):
                col = keys[loss, d, P]
                se = np.sqrt(col.fraction * (1 - col.fraction) / col.n_runs)
                measured_points(
                    ax,
                    col.n_params / P,
                    col.fraction,
                    se,
                    color=f"C{c}",
                    fmt="o-",
                    ms=3,
                    lw=1,
                    label=f"P = {P}",
                )
            ax.set(xscale="log", title=f"{LOSS_LABELS[loss]}, {d} hidden", ylim=(-0.05, 1.05))
            if i == len(losses) - 1:
                ax.set_xlabel("parameters per example N/P")
            if j == 0:
                ax.set_ylabel("fraction at zero loss")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def extrapolation(summary, P_fit, P_predict):
    """``N*(P)`` per loss: the fitted points, the chosen law and the predicted points."""
    losses = sorted({k[0] for k in summary.columns})
    depths = sorted({k[1] for k in summary.columns})
    fig, axes = new_figure(ncols=len(losses), width=4.4, height=3.6)
    grid = np.linspace(0, 1.1 * max(P_predict), 60)
    for ax, loss in zip(axes, losses, strict=True):
        for c, d in enumerate(depths):
            ex = summary.extrapolations.get((loss, d))
            fit = [(P, summary.transitions[loss, d, P]) for P in P_fit]
            fit = [(P, t) for P, t in fit if t is not None]
            if fit:
                measured_points(
                    ax,
                    [P for P, _ in fit],
                    [t.x_star for _, t in fit],
                    [t.x_star_se for _, t in fit],
                    color=f"C{c}",
                    label=f"{d} hidden",
                )
            if ex is None:
                continue
            theory_line(ax, grid, ex.affine.predict(grid), color=f"C{c}", lw=1.0, label=None)
            measured_points(
                ax,
                ex.P_predicted,
                ex.measured,
                ex.measured_se,
                color=f"C{c}",
                fmt="D",
                mec="black",
                label=None,
            )
        ax.plot(grid, grid / 2, color="grey", ls="--", lw=1.0, label="perceptron N* = P/2")
        ax.set(xlabel="training examples P", ylabel="transition N*", title=LOSS_LABELS[loss])
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def isostatic(summary):
    """``N_Delta / N`` at the end of quadratic-hinge training against ``N / N*``."""
    fig, (ax,) = new_figure(width=5.6, height=3.6)
    depths = sorted({d for d, _ in summary.isostatic})
    markers = "osD^v"
    for (d, P), iso in sorted(summary.isostatic.items()):
        measured_points(
            ax,
            iso.load,
            iso.ratio,
            iso.ratio_se,
            color=f"C{depths.index(d)}",
            fmt=markers[sorted({p for _, p in summary.isostatic}).index(P) % 5] + "-",
            ms=3,
            lw=0.8,
            label=f"{d} hidden, P = {P}",
        )
    ax.axvline(1.0, color="grey", lw=0.8)
    ax.set(
        xlabel="N / N*",
        ylabel="unsatisfied margins per parameter N_Δ/N",
        yscale="symlog",
        ylim=(0, None),
    )
    ax.yaxis.set_tick_params(which="both")
    ax.legend(fontsize=6, ncols=2)
    fig.tight_layout()
    return fig


def slowing(summary):
    """Mean ``ln t`` of converged runs against ``(N - N*)/N*``, with the fitted power law."""
    fig, (ax,) = new_figure(width=5.6, height=3.6)
    for c, (loss, s) in enumerate(sorted(summary.slowing.items())):
        if s is None:
            continue
        t = np.exp(s.log_steps)
        err = [t - np.exp(s.log_steps - s.log_steps_se), np.exp(s.log_steps + s.log_steps_se) - t]
        measured_points(ax, s.distance, t, err, color=f"C{c}", label=LOSS_LABELS[loss])
        x = np.geomspace(s.distance.min(), s.distance.max(), 40)
        design = np.column_stack([np.ones_like(s.distance), -np.log(s.distance)])
        coef = np.linalg.lstsq(
            design / s.log_steps_se[:, None], s.log_steps / s.log_steps_se, rcond=None
        )[0]
        theory_line(
            ax,
            x,
            np.exp(coef[0] - coef[1] * np.log(x)),
            color=f"C{c}",
            lw=1.0,
            label=f"slope −{s.exponent.value:.2f} ± {s.exponent.stderr:.2f}",
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="distance above the transition (N − N*)/N*",
        ylabel="steps to zero loss",
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def cusp(column, result, digits_P):
    """Held-out test error and the fraction at zero loss against ``N / N*`` (digits)."""
    fig, (ax,) = new_figure(width=5.6, height=3.6)
    measured_points(
        ax,
        result.load,
        result.error,
        result.error_se,
        color="C0",
        fmt="o-",
        lw=1,
        label="test error (held-out images)",
    )
    ax.plot(
        result.load,
        column.fraction,
        color="C3",
        ls=":",
        marker="s",
        ms=3,
        label="fraction at zero loss",
    )
    ax.axvline(1.0, color="grey", lw=0.8)
    ax.set(
        xscale="log",
        xlabel="N / N*",
        ylabel="test error / fraction",
        title=f"{digits_P} digit images, true labels",
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def measures(spreads):
    """Spread of the depths' transitions for each candidate measure of the reservoir."""
    spreads = [s for s in spreads if np.isfinite(s.spread.value)]
    fig, (ax,) = new_figure(width=5.6, height=3.2)
    names = [s.name.replace("_", " ") for s in spreads]
    values = [100 * np.expm1(s.spread.value) for s in spreads]
    errors = [100 * np.exp(s.spread.value) * s.spread.stderr for s in spreads]
    ax.barh(names, values, xerr=errors, color="C0", alpha=0.8)
    ax.set(xlabel="typical gap between the depths' transitions (%)")
    fig.tight_layout()
    return fig
