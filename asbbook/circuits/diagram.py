"""A drawn circuit: a small network with one open input-to-output path highlighted."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from asbbook.circuits import _checks, enumeration

GAP = 2.0  # horizontal distance between layers, in units of the vertical unit spacing


def strongest_open_circuit(weights: Sequence[torch.Tensor], x: torch.Tensor) -> tuple[int, ...]:
    """The open circuit ``pi`` (``S_pi(x) = 1``) with the largest ``|x_{i_0} J_pi|`` for one
    input ``x`` of shape ``(1, n_0)``; ties go to the first in row-major order."""
    widths, weights, x = _checks.network_and_inputs(weights, x)
    if x.shape[0] != 1:
        raise ValueError(f"x must hold one input, shape (1, {widths[0]}), got {tuple(x.shape)}")
    contributions = enumeration.circuit_contributions(weights, x)[0]
    states = enumeration.circuit_states(weights, x)[0]
    if not bool(states.any()):
        raise ValueError("x opens no circuit of these weights: choose another input")
    score = torch.where(states > 0, contributions.abs(), torch.full_like(contributions, -1.0))
    k = int(torch.argmax(score))
    return tuple(int(i) for i in enumeration.circuit_indices(widths)[k])


def draw_circuit(ax, weights, x, path, *, field: float | None = None) -> dict:
    """Draw the network ``weights`` on input ``x`` (``(1, n_0)``) with ``path`` highlighted.

    Units are circles (hidden units filled when their gate is open for ``x``, hollow when
    closed); every weight is a thin grey edge, and the path's edges are thick and labelled with
    their weights ``W^l_{i_l i_{l-1}}``. A box gives ``J_pi`` (the product of the labelled
    weights), ``S_pi(x)``, the contribution ``x_{i_0} J_pi S_pi(x)`` and, if given, the field
    ``h_pi``. Returns the numbers drawn: ``{"J", "S", "contribution"}``.
    """
    widths, weights, x = _checks.network_and_inputs(weights, x)
    path = tuple(int(i) for i in path)
    if len(path) != len(widths) or any(not 0 <= i < n for i, n in zip(path, widths, strict=True)):
        raise ValueError(f"path must pick one unit per layer of widths {widths}, got {path}")
    gates, _ = _checks.gates_and_output(weights, x)
    open_ = [torch.ones(widths[0])] + [g[0].cpu() for g in gates] + [torch.ones(widths[-1])]
    top = max(widths)

    def position(layer: int, unit: int) -> tuple[float, float]:
        return GAP * layer, (widths[layer] - 1) / 2 - unit

    on_path = {(ell, path[ell], path[ell + 1]) for ell in range(len(widths) - 1)}
    for ell in range(len(weights)):
        for i in range(widths[ell + 1]):
            for j in range(widths[ell]):
                (x0, y0), (x1, y1) = position(ell, j), position(ell + 1, i)
                if (ell, j, i) in on_path:
                    ax.plot([x0, x1], [y0, y1], color="C3", lw=3.0, zorder=2)
                    label = rf"$W^{{{ell + 1}}}_{{{i + 1}{j + 1}}}$"
                    ax.annotate(
                        label,
                        ((x0 + x1) / 2, (y0 + y1) / 2),
                        xytext=(0, 10),
                        textcoords="offset points",
                        ha="center",
                        color="C3",
                        fontsize=10,
                        zorder=4,
                        bbox={"fc": "white", "ec": "none", "alpha": 0.85, "pad": 0.5},
                    )
                else:
                    ax.plot([x0, x1], [y0, y1], color="0.75", lw=0.7, zorder=1)
    for ell, n in enumerate(widths):
        for i in range(n):
            px, py = position(ell, i)
            hidden = 0 < ell < len(widths) - 1
            is_open = bool(open_[ell][i] > 0)
            face = ("C0" if is_open else "white") if hidden else "0.35"
            edge = "C3" if path[ell] == i else "0.3"
            ax.scatter([px], [py], s=170, c=face, edgecolors=edge, linewidths=2.2, zorder=3)
        name = "input" if ell == 0 else ("output" if ell == len(widths) - 1 else f"layer {ell}")
        ax.text(GAP * ell, -(top - 1) / 2 - 0.7, name, ha="center", va="top", fontsize=10)
    for j in range(widths[0]):
        px, py = position(0, j)
        ax.text(
            px - 0.3,
            py,
            rf"$x_{j + 1} = {float(x[0, j]):+.2f}$",
            ha="right",
            va="center",
            fontsize=9,
        )
    J = 1.0
    for ell, w in enumerate(weights):
        J *= float(w[path[ell + 1], path[ell]])
    S = int(all(bool(open_[ell][path[ell]] > 0) for ell in range(1, len(widths) - 1)))
    contribution = float(x[0, path[0]]) * J * S
    names = [
        rf"W^{{{ell + 1}}}_{{{path[ell + 1] + 1}{path[ell] + 1}}}" for ell in range(len(weights))
    ][::-1]
    values = [float(w[path[ell + 1], path[ell]]) for ell, w in enumerate(weights)][::-1]
    gate_names = [rf"g^{{{ell}}}_{{{path[ell] + 1}}}" for ell in range(1, len(widths) - 1)]
    lines = [
        rf"$\pi = ({', '.join(str(i + 1) for i in path)})$",
        rf"$J_\pi = {' '.join(names)}$",
        "$\\quad = " + "".join(f"({v:+.2f})" for v in values) + rf" = {J:+.3f}$",
        rf"$S_\pi(x) = {' '.join(gate_names)} = {S}$",
        rf"$x_{{{path[0] + 1}}} J_\pi S_\pi = {contribution:+.3f}$",
    ]
    if field is not None:
        lines.append(rf"$h_\pi = {field:+.2f}$ (over the dataset)")
    lines.append("filled unit: gate open")
    ax.text(
        GAP * (len(widths) - 1) + 0.4,
        (top - 1) / 2 + 0.5,
        "\n".join(lines),
        ha="left",
        va="top",
        fontsize=10,
        bbox={"fc": "white", "ec": "C3", "pad": 4},
    )
    ax.set_xlim(-2.2, GAP * (len(widths) - 1) + 7.7)
    ax.set_ylim(-(top - 1) / 2 - 1.0, (top - 1) / 2 + 0.8)
    ax.set_axis_off()
    return {"J": J, "S": S, "contribution": contribution}
