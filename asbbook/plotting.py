"""One figure style for the whole book.

White opaque backgrounds (readable in dark mode), labelled axes, theory as lines and
measurements as points with error bars.
"""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

BOOK_STYLE = {
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "savefig.transparent": False,
    "figure.dpi": 110,
    "figure.figsize": (6.4, 4.0),
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "font.size": 10,
    "lines.linewidth": 1.6,
    "errorbar.capsize": 2.5,
}


def use_book_style() -> None:
    """Apply the book's rcParams (call once at the top of a chapter)."""
    mpl.rcParams.update(BOOK_STYLE)


def theory_line(ax, x, y, label="theory", **kwargs):
    """Draw a theoretical prediction as a continuous line."""
    kwargs.setdefault("color", "black")
    kwargs.setdefault("lw", 1.4)
    return ax.plot(np.asarray(x), np.asarray(y), label=label, **kwargs)


def measured_points(ax, x, y, err, label="measured", **kwargs):
    """Draw measurements as markers with error bars (``err``: one standard error unless stated)."""
    kwargs.setdefault("fmt", "o")
    kwargs.setdefault("ms", 4)
    return ax.errorbar(np.asarray(x), np.asarray(y), yerr=np.asarray(err), label=label, **kwargs)


def new_figure(
    ncols: int = 1, nrows: int = 1, *, width: float = 6.4, height: float = 4.0, **kwargs
):
    """A figure with the book style applied; returns ``(fig, axes)`` with ``axes`` a flat tuple,
    so ``fig, (ax,) = new_figure()`` and ``fig, (left, right) = new_figure(ncols=2)`` both work."""
    use_book_style()
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kwargs
    )
    return fig, tuple(axes.ravel())
