"""Predicted-versus-measured tables, asserted.

Every chapter ends its "Compare" step with :func:`compare`, which builds the table shown to
the reader and raises :class:`AgreementError` when a measurement misses its prediction by more
than the stated tolerance (a multiple of the Monte-Carlo standard error), so a disagreement
fails the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class AgreementError(AssertionError):
    """A measured value disagrees with its prediction beyond the stated tolerance."""


@dataclass(frozen=True)
class Comparison:
    """One row: ``|measured - predicted| <= n_se * stderr + abs_tol`` must hold."""

    quantity: str
    predicted: float
    measured: float
    stderr: float
    n_se: float = 4.0
    abs_tol: float = 0.0

    @property
    def tolerance(self) -> float:
        return self.n_se * self.stderr + self.abs_tol

    @property
    def deviation_in_se(self) -> float:
        """``(measured - predicted) / stderr`` (``nan`` for an exact, zero-error measurement)."""
        if self.stderr == 0:
            return math.nan
        return (self.measured - self.predicted) / self.stderr

    @property
    def ok(self) -> bool:
        return abs(self.measured - self.predicted) <= self.tolerance


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def comparison_markdown(rows: list[Comparison]) -> str:
    """The rows as a Markdown table (rendered by ``IPython.display.Markdown``)."""
    lines = [
        "| quantity | predicted | measured | std. error | tolerance | deviation (SE) | agrees |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        dev = "—" if math.isnan(r.deviation_in_se) else f"{r.deviation_in_se:+.2f}"
        lines.append(
            f"| {r.quantity} | {_fmt(r.predicted)} | {_fmt(r.measured)} | {_fmt(r.stderr)} "
            f"| {_fmt(r.tolerance)} | {dev} | {'yes' if r.ok else '**NO**'} |"
        )
    return "\n".join(lines)


def assert_agreement(rows: list[Comparison]) -> None:
    """Raise :class:`AgreementError` listing every row outside its tolerance."""
    bad = [r for r in rows if not r.ok]
    if bad:
        detail = "; ".join(
            f"{r.quantity}: predicted {r.predicted:.6g}, measured {r.measured:.6g} "
            f"(tolerance {r.tolerance:.3g})"
            for r in bad
        )
        raise AgreementError(
            f"{len(bad)} of {len(rows)} predictions disagree with the run: {detail}"
        )


def compare(rows: list[Comparison]) -> None:
    """Display the rows as a table, then assert their agreement (so a failure shows the table)."""
    from IPython.display import Markdown, display

    display(Markdown(comparison_markdown(rows)))
    assert_agreement(rows)
