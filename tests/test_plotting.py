"""The shared figure style: sized to the column, text readable there, SVG inline output."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import io  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from asbbook import plotting  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_figures_fit_the_column_however_many_panels():
    for ncols, width in ((1, None), (2, None), (2, 4.6), (3, None), (1, 20.0)):
        fig, axes = plotting.new_figure(ncols=ncols, width=width)
        assert len(axes) == ncols
        assert fig.get_figwidth() <= plotting.COLUMN_WIDTH_IN + 1e-9
    fig, _ = plotting.new_figure(width=3.0)
    assert fig.get_figwidth() == pytest.approx(3.0)
    assert plotting.COLUMN_WIDTH_IN * plotting.CSS_PX_PER_INCH == pytest.approx(688)


def test_the_style_keeps_every_text_at_least_11_css_px_in_the_column():
    fig, (left, right) = plotting.new_figure(ncols=2)
    left.plot([0, 1], [0, 1], label="measured")
    left.set_xlabel("beta")
    left.set_title("mean")
    left.legend()
    right.set_ylabel("variance")
    assert plotting.smallest_text_px(fig) >= plotting.MIN_TEXT_PX
    plotting.check_readable(fig)


def test_small_text_or_an_oversized_figure_is_refused():
    fig, (ax,) = plotting.new_figure()
    ax.set_xlabel("tiny", fontsize=6)
    with pytest.raises(ValueError, match="CSS px"):
        plotting.check_readable(fig)
    wide = plt.figure(figsize=(14, 3))  # shown at 688 / 1344 of its size
    wide.text(0.5, 0.5, "label", fontsize=10)
    assert plotting.displayed_scale(wide) == pytest.approx(688 / 1344)
    with pytest.raises(ValueError, match="smallest text"):
        plotting.check_readable(wide)


@pytest.mark.parametrize("bad", [{"ncols": 0}, {"width": -1.0}, {"height": 0.0}])
def test_bad_sizes_are_refused_with_the_argument_named(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        plotting.new_figure(**bad)


def test_svg_output_is_white_and_deterministic():
    plotting.use_book_style()

    def svg() -> str:
        fig, (ax,) = plotting.new_figure()
        ax.plot([0, 1], [1, 0])
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
        plt.close(fig)
        return buffer.getvalue()

    first, second = svg(), svg()
    assert first == second  # svg.hashsalt: the same figure gives the same file
    assert "fill: #ffffff" in first  # an opaque white background, for the dark theme


def test_inline_backend_emits_svg_under_ipython():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        assert plotting.use_inline_svg() is True
        formatters = shell.display_formatter.formatters
        fig, (ax,) = plotting.new_figure()
        data, _ = shell.display_formatter.format(fig)
        assert "image/svg+xml" in data and "image/png" not in data
        assert formatters["image/svg+xml"].lookup(fig) is not None
    finally:
        InteractiveShell.clear_instance()
