"""A two-page book built with the real configuration, to test the presentation checks themselves.

``good`` follows CONTRIBUTING.md: a glued SVG figure with ``:name:``, ``:alt:`` and a caption,
one without ``:alt:`` (its caption becomes the alt text), a numbered equation referenced with
``{eq}``, a ``hide-input`` cell, a long code line and a long inline name, and an exercise with a
gated solution whose code cell executes. ``bad`` breaks each rule the browser test checks: an
uncaptioned figure, a block wider than a phone, a code line clipped at the column's edge and a
display equation wider than the column.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from asbbook import notebooks

FENCE = "```"

GOOD = [
    new_markdown_cell(
        "# A good page\n\n"
        "The long name `asbbook.capacity.a_very_long_function_name_that_must_wrap_on_a_phone_"
        "screen_without_widening_the_page` wraps. {numref}`fig-good` shows a line, "
        "{numref}`fig-good-noalt` another, and {eq}`eq-good` is numbered:\n\n"
        "$$\n"
        "Z(\\beta) = \\sum_{s \\in \\{0, 1\\}^n} e^{-\\beta E(s)}\n"
        "$$ (eq-good)\n"
    ),
    new_code_cell(
        "import matplotlib.pyplot as plt\n"
        "from myst_nb import glue\n\n"
        "from asbbook.plotting import glue_figure, new_figure, use_book_style\n\n"
        "use_book_style()"
    ),
    new_code_cell(
        "fig, (left, right) = new_figure(ncols=2)\n"
        "left.plot([0, 1, 2], [0, 1, 4], label='measured')\n"
        "left.set_xlabel('inverse temperature $\\\\beta$')\n"
        "left.legend()\n"
        "right.plot([0, 1, 2], [4, 1, 0])\n"
        "right.set_xlabel('width $n$')\n"
        "glue_figure('fig-good', fig)\n"
        "fig, (ax,) = new_figure()\n"
        "ax.plot([0, 1], [1, 0])\n"
        "glue_figure('fig-good-noalt', fig)",
        metadata={"tags": ["hide-input"]},
    ),
    new_markdown_cell(
        f"{FENCE}{{glue:figure}} fig-good\n:name: fig-good\n"
        ":alt: Two panels: a rising curve against beta and a falling one against width.\n\n"
        "A two-panel figure with its caption.\n"
        f"{FENCE}\n\n"
        f"{FENCE}{{glue:figure}} fig-good-noalt\n:name: fig-good-noalt\n\n"
        "A falling line: this caption is also the alt text.\n"
        f"{FENCE}\n"
    ),
    new_markdown_cell(
        "| parameter | meaning |\n|---|---|\n"
        "| `n_samples_per_point` | Monte-Carlo samples per grid point, of a long description |\n"
    ),
    new_code_cell(
        "values = {'first_parameter': 1, 'second_parameter': 2, 'third_parameter': 3, "
        "'fourth_parameter_name': 4}  # 88 chars+\n"
        "print(sorted(values))"
    ),
    new_markdown_cell(
        "## Exercises\n\n" + f"{FENCE}{{exercise-start}}\n:label: mini-ex1\n{FENCE}\n"
    ),
    new_markdown_cell("Compute $2 + 2$ in Python.\n\n" + f"{FENCE}{{exercise-end}}\n{FENCE}\n"),
    new_markdown_cell(f"{FENCE}{{solution-start}} mini-ex1\n:class: dropdown\n{FENCE}\n"),
    new_code_cell("answer = 2 + 2\nassert answer == 4\nprint(f'the solution ran: {answer}')"),
    new_markdown_cell(f"{FENCE}{{solution-end}}\n{FENCE}\n"),
]

BAD = [
    new_markdown_cell(
        "# A bad page\n\n"
        '<div class="asb-too-wide" style="width: 900px; height: 4px; background: red"></div>\n\n'
        '<div class="highlight"><pre style="white-space: pre; overflow-x: auto">'
        + "clipped = "
        + "x" * 200
        + "</pre></div>\n\n"
        '<div class="math notranslate nohighlight" style="min-width: 1400px">a wide equation</div>\n\n'
        "| a first column of a long description that wraps | b | c | d | e | f | g |\n"
        "|---|---|---|---|---|---|---|\n"
        "| " + " ".join(["word"] * 30) + " | " + " | ".join(["a long cell of text"] * 6) + " |\n"
    ),
    new_code_cell(
        "import matplotlib.pyplot as plt\n\n"
        "fig, ax = plt.subplots(figsize=(14, 3))\n"
        "ax.plot([0, 1], [0, 1])\n"
        "plt.show()"
    ),
]


def make(root: Path, stage: Path) -> Path:
    """Write and execute the two pages into ``stage`` with the book's configuration."""
    stage.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((root / "_config.yml").read_text())
    config["title"] = "asbbook presentation test"
    (stage / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.copy(root / "references.bib", stage / "references.bib")
    (stage / "book").mkdir(exist_ok=True)
    shutil.copy(root / config["html"]["favicon"], stage / config["html"]["favicon"])
    toc = {"format": "jb-book", "root": "intro", "chapters": [{"file": "good"}, {"file": "bad"}]}
    (stage / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    (stage / "intro.md").write_text("# Presentation test\n\nTwo pages: `good` and `bad`.\n")
    for name, cells in (("good", GOOD), ("bad", BAD)):
        nb = new_notebook(cells=cells)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        source = stage / f"{name}.source.ipynb"
        nbformat.write(nb, source)
        notebooks.execute_chapter(source, stage / f"{name}.ipynb", {}, cwd=root, progress=False)
        source.unlink()
    return stage


def build(root: Path, out: Path) -> Path:
    """The two pages executed and built with ``-W -n --keep-going``; returns the HTML folder."""
    stage = make(root, out / "src")
    return notebooks.build_html(stage, out, strict=True)
