"""Families of independent tests as one row of a comparison table (book, Chapter 1).

At every grid point ``z_i`` the chapter counts gates in independent draws: the count of the
minority state (open gates for ``z <= 0``, closed for ``z > 0``) is ``k_i ~ Binomial(n, q_i)``
with ``q_i = sigmoid(-beta |z_i|)``. Far in the tails only about 0.1 to 5 such gates are
expected, where a normal approximation misstates the tail probabilities, so each point gets the
exact two-sided binomial test (:class:`asbbook.report.BinomialComparison`).

A family of ``m`` independent tests (the grid points; or the temperatures of a sweep, sampled
independently) is shown as one row whose p-value is the Sidak combination
``1 - (1 - min_i p_i)^m`` (Sidak 1967). It is exact for independent continuous p-values and
conservative for discrete ones, which are super-uniform; the table's Bonferroni split then holds
as before. This row type belongs in :mod:`asbbook.report` and can move there unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from asbbook import report, validation


def sidak(p_min: float, m: int) -> float:
    """``1 - (1 - p_min)^m``, computed without cancellation for small ``p_min``."""
    return float(-math.expm1(m * math.log1p(-p_min))) if p_min < 1 else 1.0


@dataclass(frozen=True)
class SidakFamily:
    """Independent statistical rows tested as one: ``p = 1 - (1 - min p_i)^m``.

    ``labels[i]`` names row ``i`` in the table (for example ``"z = 1.35"``); the table shows the
    worst row, its prediction, measurement and uncertainty.
    """

    quantity: str
    rows: Sequence
    labels: Sequence[str]

    def __post_init__(self):
        rows, labels = tuple(self.rows), tuple(self.labels)
        if not rows or len(rows) != len(labels):
            raise ValueError("rows and labels must be equal-length and non-empty")
        for row in rows:
            if not hasattr(row, "p_value"):
                raise TypeError(f"rows must be statistical rows, got {type(row).__name__}")
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "labels", labels)

    @property
    def point_p_values(self) -> tuple[float, ...]:
        return tuple(row.p_value() for row in self.rows)

    @property
    def worst(self) -> int:
        """The index of the row with the smallest p-value."""
        p = self.point_p_values
        return p.index(min(p))

    def p_value(self) -> float:
        return sidak(min(self.point_p_values), len(self.rows))

    def detectable(self, alpha: float) -> float:
        """The worst row's detectable deviation at the Sidak per-row level
        ``1 - (1 - alpha)^(1/m)``."""
        per_row = -math.expm1(math.log1p(-alpha) / len(self.rows))
        return self.rows[self.worst].detectable(per_row)

    def cells(self) -> tuple[str, str, str]:
        predicted, measured, uncertainty = self.rows[self.worst].cells()
        where = f"{len(self.rows)} tests; worst {self.labels[self.worst]}: "
        return where + predicted, measured, uncertainty


def minority_gate_row(quantity: str, z: float, beta: float, open_count: int, n_samples: int):
    """The exact binomial test of the gate count at one ``z``: the minority state's count (open
    gates for ``z <= 0``, closed for ``z > 0``) against ``sigmoid(-beta |z|)``. Returns ``None``
    where that probability underflows to 0 in float64 (``beta |z| > 745``): such a gate is
    deterministic and its count cannot deviate."""
    n = validation.check_int("n_samples", n_samples, minimum=1)
    k = validation.check_int("open_count", open_count, minimum=0, maximum=n)
    z = validation.check_real("z", z)
    beta = validation.check_real("beta", beta, positive=True)
    q = float(torch.sigmoid(torch.tensor(-beta * abs(z), dtype=torch.float64)))
    if q == 0.0:
        return None
    return report.BinomialComparison(quantity, q, k if z <= 0 else n - k, n)


def minority_gate_family(quantity: str, z, beta, open_count, n_samples: int) -> SidakFamily:
    """:func:`minority_gate_row` at every grid point, as one :class:`SidakFamily` (points whose
    gate is deterministic in float64 are left out)."""
    z = validation.as_float_tensor("z", z, ndim=1, dtype=torch.float64)
    counts = list(open_count)
    if len(counts) != z.numel():
        raise ValueError("open_count must have one count per grid point")
    rows, labels = [], []
    for zi, k in zip(z.tolist(), counts, strict=True):
        state = "open" if zi <= 0 else "closed"
        row = minority_gate_row(f"{state} gates at z = {zi:.3g}", zi, beta, int(k), n_samples)
        if row is not None:
            rows.append(row)
            labels.append(f"z = {zi:.3g}")
    if not rows:
        raise ValueError("beta * |z| is beyond float64 at every grid point: nothing to test")
    return SidakFamily(quantity, rows, labels)
