"""User strings in reports are text: no raw HTML in rendered Markdown, no mathtext in plots."""

import warnings

import numpy as np
import pytest

from scalingfit import fit_trend
from scalingfit.simulate import simulate_results

EVIL_MODEL = '<img src=x onerror="alert(1)">'
EVIL_FAMILY = "fam<script>alert(2)</script>"
MATH_FAMILY = r"$\frac{a}{$"


@pytest.fixture(scope="module")
def evil():
    df = simulate_results("inverse", n_families=2, n_models=5, n_examples=200, rng=3)
    df["model"] = df["model"] + EVIL_MODEL
    df["family"] = df["family"].replace({"fam0": EVIL_FAMILY, "fam1": MATH_FAMILY})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return df, fit_trend(df, rng=0, n_boot=200)


def test_markdown_report_renders_no_raw_html(evil):
    """Rendered as CommonMark-style Markdown with raw HTML allowed (python-markdown, as mkdocs
    does), the names show as text: no <img> or <script> element appears."""
    markdown = pytest.importorskip("markdown")
    df, result = evil
    md = result.report("markdown", data=df, plots=False)
    assert "&lt;img" in md and "&lt;script>" in md
    rendered = markdown.markdown(md, extensions=["tables"])
    assert "<img src=x" not in rendered and "<script>" not in rendered
    assert "&lt;img" in rendered


def test_html_report_draws_mathtext_names_as_text(evil):
    df, result = evil
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        page = result.report("html", data=df)
    assert MATH_FAMILY in page and "<script>alert" not in page
    assert page.count('src="data:image/png;base64,') >= 2


def test_result_plot_draws_a_mathtext_family_name(evil, tmp_path):
    """result.plot() and plot_families() on their own (outside a report) save fine."""
    import matplotlib

    matplotlib.use("Agg")
    from scalingfit.plotting import plot_families

    _, result = evil
    ax = result.plot()
    ax.figure.savefig(tmp_path / "trend.png")
    texts = [t.get_text() for t in ax.figure.findobj(lambda a: hasattr(a, "get_text"))]
    assert any(MATH_FAMILY in t for t in texts)
    out = plot_families(result)
    fig = getattr(np.ravel(out)[0] if isinstance(out, np.ndarray) else out, "figure", out)
    fig.savefig(tmp_path / "families.png")
    assert (tmp_path / "families.png").stat().st_size > 0
