"""One figure style for the whole book.

Figures are drawn for the book's text column: the HTML theme's article column is
``COLUMN_PX`` = 688 CSS px wide at desktop width, and a browser shows an SVG point as 4/3 CSS px,
so a figure ``COLUMN_WIDTH_IN`` inches wide is shown at its natural size, never scaled down. With
the smallest font of the style at 9 pt (12 CSS px), every label stays at least
``MIN_TEXT_PX`` = 11 CSS px on a desktop screen. Inline figures are SVG (sharp at any zoom),
with a white opaque background so they read the same in the dark theme.

Chapter authors write::

    fig, (left, right) = new_figure(ncols=2)        # sized to the column
    ...
    glue_figure("fig-capacity", fig)                 # checks the text size, glues, closes

and, in a Markdown cell::

    ```{glue:figure} fig-capacity
    :name: fig-capacity
    :alt: What the figure shows, in one sentence.

    The caption. {numref}`fig-capacity` in the prose gives "Fig. N".
    ```
"""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

COLUMN_PX = 688  # the article column of sphinx-book-theme at 1280 px, in CSS px
CSS_PX_PER_INCH = 96  # an SVG inch is 72 pt = 96 CSS px
COLUMN_WIDTH_IN = COLUMN_PX / CSS_PX_PER_INCH  # 7.17 in: shown at natural size in the column
MIN_TEXT_PX = 11.0  # the smallest readable text in a figure at desktop width, in CSS px
DEFAULT_PANEL_HEIGHT_IN = 3.6

BOOK_STYLE = {
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "savefig.transparent": False,
    "figure.dpi": 96,  # 1 in = 96 CSS px: what you see in Jupyter is the size in the book
    "savefig.dpi": 200,  # any rasterised artist inside an SVG, and PNG exports, at >= 2x
    "savefig.bbox": None,  # keep the figure's width: "tight" would change it per figure
    "figure.figsize": (COLUMN_WIDTH_IN, DEFAULT_PANEL_HEIGHT_IN),
    "svg.hashsalt": "asbbook",  # deterministic element ids, so re-runs give the same SVG
    "svg.fonttype": "path",  # glyphs as paths: the figure looks the same without its fonts
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "figure.titlesize": 11,
    "lines.linewidth": 1.6,
    "errorbar.capsize": 2.5,
}


def use_inline_svg() -> bool:
    """Make IPython's inline backend emit SVG (vector, sharp on any screen); False outside IPython."""
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:
        return False
    if get_ipython() is None:
        return False
    set_matplotlib_formats("svg")
    return True


def use_book_style() -> None:
    """Apply the book's rcParams and SVG inline output (call once at the top of a chapter)."""
    mpl.rcParams.update(BOOK_STYLE)
    use_inline_svg()


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
    ncols: int = 1,
    nrows: int = 1,
    *,
    width: float | None = None,
    height: float | None = None,
    **kwargs,
):
    """A figure sized for the book's column; returns ``(fig, axes)`` with ``axes`` a flat tuple,
    so ``fig, (ax,) = new_figure()`` and ``fig, (left, right) = new_figure(ncols=2)`` both work.

    ``width`` is one panel's width in inches (default: the column shared equally by the panels);
    the whole figure is capped at the column, ``COLUMN_WIDTH_IN``, however many panels it has,
    because a wider figure would be scaled down in the page and its text would shrink below
    ``MIN_TEXT_PX``. ``height`` is one row's height in inches (default
    ``DEFAULT_PANEL_HEIGHT_IN``, 2.8 in for three or more panels side by side). Prefer more rows
    to more than three panels side by side.
    """
    if ncols < 1 or nrows < 1:
        raise ValueError(f"ncols and nrows must be at least 1, got ncols={ncols}, nrows={nrows}")
    if width is not None and not width > 0:
        raise ValueError(f"width must be a positive number of inches, got {width}")
    if height is not None and not height > 0:
        raise ValueError(f"height must be a positive number of inches, got {height}")
    total_width = COLUMN_WIDTH_IN if width is None else min(width * ncols, COLUMN_WIDTH_IN)
    if height is None:
        height = DEFAULT_PANEL_HEIGHT_IN if ncols < 3 else 2.8
    use_book_style()
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(total_width, height * nrows), squeeze=False, **kwargs
    )
    return fig, tuple(axes.ravel())


def displayed_scale(fig, column_px: float = COLUMN_PX) -> float:
    """How much the page shrinks ``fig``: ``min(1, column_px / natural width in CSS px)``."""
    natural_px = fig.get_figwidth() * CSS_PX_PER_INCH
    return min(1.0, column_px / natural_px)


def smallest_text_px(fig, column_px: float = COLUMN_PX) -> float:
    """The smallest visible, non-empty text of ``fig`` as shown in the column, in CSS px:
    font size in pt x 4/3 (px per pt) x :func:`displayed_scale`."""
    sizes = [
        text.get_fontsize()
        for text in fig.findobj(mpl.text.Text)
        if text.get_visible() and text.get_text().strip() and text.figure is fig
    ]
    if not sizes:
        return float("inf")
    return min(sizes) * (CSS_PX_PER_INCH / 72) * displayed_scale(fig, column_px)


def check_readable(fig, column_px: float = COLUMN_PX) -> None:
    """Raise ``ValueError`` when some text of ``fig`` would show below ``MIN_TEXT_PX``."""
    smallest = smallest_text_px(fig, column_px)
    if smallest < MIN_TEXT_PX - 1e-9:
        raise ValueError(
            f"the smallest text of this figure shows at {smallest:.1f} CSS px in the "
            f"{column_px}-px column (minimum {MIN_TEXT_PX}): use new_figure() for its size and "
            "font sizes of at least 9 pt"
        )


def glue_figure(name: str, fig) -> None:
    """Check that ``fig`` is readable in the column, glue it as ``name`` (shown where a
    ``{glue:figure}`` directive names it, not in the code cell) and close it."""
    from myst_nb import glue

    check_readable(fig)
    glue(name, fig, display=False)
    plt.close(fig)
