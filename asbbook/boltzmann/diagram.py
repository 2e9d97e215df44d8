"""The graphical model of Chapter 1, drawn by code (matplotlib patches only).

Inputs ``x`` feed deterministic pre-activations ``z^1 = W^1 x``; each ``z^l_i`` sets the law of its
own gate ``g^l_i ~ Bernoulli(sigmoid(beta z^l_i))``; the unit passes ``h^l_i = g^l_i z^l_i`` to every
pre-activation of the next layer; the output is ``f = z^L``. There is no edge between the gates
of one layer: given ``z^l`` they are independent, which is the factorisation
``P(g^l | z^l) = prod_i Bernoulli(g^l_i; sigmoid(beta z^l_i))``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import patches

from asbbook import plotting, validation

_INPUT, _PRE, _GATE = "#dddddd", "white", "#fde2c4"


def _column(n: int) -> np.ndarray:
    return ((n - 1) / 2 - np.arange(n)) * 1.15


def draw_graphical_model(widths: Sequence[int] = (3, 4, 4, 1), *, width: float = 6.4):
    """Draw the network ``widths = (n_0, ..., n_L)`` as a directed graphical model; returns
    ``(fig, ax)``. Shaded circles: observed inputs; squares: deterministic pre-activations;
    orange circles: stochastic gates; boxes: the units ``h = g z``."""
    widths = validation.check_widths(widths)
    if max(widths) > 8 or len(widths) > 6:
        raise ValueError("widths: the diagram is drawn for at most 6 layers of at most 8 units")
    fig, (ax,) = plotting.new_figure(width=width, height=0.5 + 0.62 * max(widths))
    ax.set_axis_off()
    ax.set_aspect("equal")
    r, step = 0.25, 2.3
    arrow = {"arrowstyle": "-|>", "color": "0.45", "lw": 0.7, "shrinkA": 0, "shrinkB": 0}

    def node(x, y, kind, text):
        if kind == "pre":
            patch = patches.Rectangle((x - r, y - r), 2 * r, 2 * r, fc=_PRE, ec="black", lw=1)
        else:
            patch = patches.Circle((x, y), r, fc=_INPUT if kind == "input" else _GATE, ec="black")
        ax.add_patch(patch)
        ax.text(x, y, text, ha="center", va="center", fontsize=8)

    sources = [(0.0 + r, y) for y in _column(widths[0])]
    for i, y in enumerate(_column(widths[0])):
        node(0.0, y, "input", f"$x_{i + 1}$")
    last = len(widths) - 1
    for layer, n in enumerate(widths[1:], start=1):
        x0 = step * layer - 0.6
        ys = _column(n)
        for y in ys:
            for sx, sy in sources:
                ax.annotate("", (x0 - r, y), (sx, sy), arrowprops=arrow)
        new_sources = []
        for i, y in enumerate(ys):
            if layer == last:
                node(x0, y, "pre", "$f$")
                continue
            node(x0, y, "pre", f"$z^{layer}_{i + 1}$")
            node(x0 + 0.75, y, "gate", f"$g^{layer}_{i + 1}$")
            ax.annotate("", (x0 + 0.75 - r, y), (x0 + r, y), arrowprops={**arrow, "color": "C1"})
            box = patches.FancyBboxPatch((x0 - r - 0.08, y - r - 0.08), 0.75 + 2 * r + 0.16,
                                         2 * r + 0.16, boxstyle="round,pad=0.02", fc="none",
                                         ec="0.6", ls="--", lw=0.8)  # fmt: skip
            ax.add_patch(box)
            new_sources.append((x0 + 0.75 + r + 0.1, y))
        if layer < last:
            ax.text(x0 + 0.37, max(ys) + 0.6, f"$h^{layer} = g^{layer} z^{layer}$", ha="center",
                    fontsize=8)  # fmt: skip
        sources = new_sources
    top = max(_column(max(widths))) + 1.1
    ax.set_xlim(-0.5, step * last - 0.6 + 0.6)
    ax.set_ylim(-top, top)
    handles = [
        patches.Circle((0, 0), 1, fc=_INPUT, ec="black", label="observed input"),
        patches.Rectangle((0, 0), 1, 1, fc=_PRE, ec="black", label=r"deterministic $z = W h$"),
        patches.Circle((0, 0), 1, fc=_GATE, ec="black",
                       label=r"gate $g \sim \mathrm{Bernoulli}(\sigma(\beta z))$"),
    ]  # fmt: skip
    ax.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, bbox_to_anchor=(0.5, -0.08))
    return fig, ax
