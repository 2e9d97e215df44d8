"""Chapter 6's figures: the transition sweep and the order parameters over training."""

from __future__ import annotations

import numpy as np

from asbbook.plotting import measured_points, new_figure, theory_line

PANELS = (
    ("unsatisfied", "unsatisfied margins $y f < 1$"),
    ("loss", "hinge loss"),
    ("alignment", "label alignment $m$"),
    ("drift", r"output variance drift $(\hat q^L - q^L)/q^L$"),
    ("entropy", "gate entropy, layer 1 (bits)"),
    ("information", "gate-label information, layer 1 (bits)"),
)


def transition_figure(column, transition, near, *, P: int, depth: int):
    """The sweep's success fraction against ``N`` with the logistic fit, ``N*`` and the widths
    trained near it."""
    fig, (ax,) = new_figure(width=6.4, height=3.8)
    grid = np.geomspace(min(column.n_params[0], near.n_params[0]), column.n_params[-1], 200)
    fit = 1 / (1 + np.exp(-(np.log(grid) - transition.log_x_star) / transition.width))
    theory_line(ax, grid, fit, color="gray", label="logistic fit")
    n = column.n_runs
    se = np.sqrt(np.maximum(column.fraction * (1 - column.fraction), 0.25 / n) / n)
    measured_points(
        ax,
        column.n_params,
        column.fraction,
        se,
        color="black",
        label=f"sweep: fraction at zero loss ± 1 SE ({n} runs)",
    )
    ax.axvline(
        transition.x_star, color="gray", ls="--", lw=1, label=rf"$N^* = {transition.x_star:.0f}$"
    )
    for k, n_params in enumerate(near.n_params):
        ax.axvline(
            n_params, color=f"C{k}", lw=2, alpha=0.6, label=f"trained: {near.ratios[k]:.2f} $N^*$"
        )
    ax.set(
        xscale="log",
        xlabel="parameters $N$",
        ylabel="fraction of runs at zero hinge loss",
        title=f"P = {P} random labels, depth {depth}",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def order_parameter_figure(curves, steps, near, *, entropy_pred: float, info_pred: float):
    """Six panels of replica means ± 1 SE over training, one colour per width."""
    steps = np.asarray(steps)
    shown = np.unique(
        np.concatenate(
            [np.flatnonzero(steps <= 100), np.searchsorted(steps, np.geomspace(100, steps[-1], 30))]
        )
    )
    shown = shown[shown < len(steps)]
    fig, axes = new_figure(ncols=2, nrows=3, width=4.6, height=3.2)
    for k, width_curves in enumerate(curves):
        label = f"{near.ratios[k]:.2f} $N^*$"
        for ax, (key, ylabel) in zip(axes, PANELS, strict=True):
            value, se = width_curves[key]
            value, se = np.asarray(value), np.asarray(se)
            if value.ndim == 2:  # per layer: the output layer for the drift, else layer 1
                column = -1 if key == "drift" else 0
                value, se = value[:, column], se[:, column]
            measured_points(
                ax,
                steps[shown],
                value[shown],
                se[shown],
                ms=3,
                color=f"C{k}",
                elinewidth=0.8,
                label=label,
            )
            ax.set_ylabel(ylabel)
    theory_line(axes[2], steps, np.zeros(len(steps)), color="black", lw=1, label="symmetric 0")
    theory_line(axes[3], steps, np.zeros(len(steps)), color="black", lw=1, label="fixed point")
    theory_line(axes[4], steps, np.full(len(steps), entropy_pred), label="step-0 theory")
    theory_line(axes[5], steps, np.full(len(steps), info_pred), label="label-blind baseline")
    axes[1].set_yscale("symlog", linthresh=1e-3)
    for ax in axes:
        ax.set_xscale("symlog", linthresh=100, linscale=0.5)
        ax.set_xlim(-2, steps[-1] * 1.15)
        ax.set_xlabel("Adam step (linear to 100, then log)")
        ax.legend(fontsize=6.5)
    fig.tight_layout()
    return fig


def stuck_figure(longer, below_ratios, budget: int, converged_at_budget):
    """The loss of every replica below ``N*`` that was short of zero loss at the end of the first
    budget, over the extended run (``longer``: a ``Dynamics`` of the widths below ``N*``), one
    colour per width, on log axes; the dashed line marks the first budget. A replica that reaches
    zero loss later leaves the log axis there."""
    fig, (ax,) = new_figure(width=6.4, height=3.8)
    steps = np.asarray(longer.steps, dtype=np.float64)
    shown = steps > 0
    for j, ratio in enumerate(below_ratios):
        short = ~np.asarray(converged_at_budget[j])
        losses = np.asarray(longer["loss"][j])[short]
        for i, loss in enumerate(losses):
            positive = shown & (loss > 0)
            ax.plot(
                steps[positive],
                loss[positive],
                color=f"C{j}",
                lw=0.8,
                alpha=0.6,
                label=f"{ratio:.2f} $N^*$ ({len(losses)} replicas)" if i == 0 else None,
            )
    ax.axvline(budget, color="black", ls="--", lw=1, label="end of the first budget")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="Adam step",
        ylabel="hinge loss",
        title="replicas below $N^*$ short of zero loss at the budget",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
