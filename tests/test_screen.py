"""The screen document: self-contained HTML (sortable in a real browser, numbers equal to the
summary), Markdown, per-group reports, small multiples and ``scalingfit screen``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from scalingfit.cli import main
from scalingfit.many import fit_many
from scalingfit.screen import group_slug, md_escape, plot_many, render_screen

from _many_data import aggregated_tasks

EVIL = "<script>alert('x')</script> | `tick`"


@pytest.fixture(scope="module")
def table():
    t = aggregated_tasks(n_tasks=5, rng=4)
    t.loc[t["task"] == "task04", "task"] = EVIL
    bad = (t["task"] == "task03") & t["model"].isin(["fam1-m3", "fam1-m4", "fam1-m2"])
    return t[~bad].reset_index(drop=True)


@pytest.fixture(scope="module")
def many(table):
    return fit_many(table, n_boot=200, rng=7, progress=False)


@pytest.fixture(scope="module")
def written(many, tmp_path_factory):
    out = tmp_path_factory.mktemp("screen") / "screen.html"
    text = render_screen(many, "html", out=out)
    return out, text


class _Table(HTMLParser):
    """The summary table of a page: header keys and each cell's data-value and text."""

    def __init__(self):
        super().__init__()
        self.keys, self.rows, self.external = [], [], []
        self._in, self._cell, self._row = False, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for attr in ("src", "href"):
            v = a.get(attr)
            if v and not v.startswith(("data:", "#", "screen_files/")):
                self.external.append(v)
        if tag == "link" or (tag == "script" and "src" in a):
            self.external.append(tag)
        if tag == "table" and a.get("id") == "summary":
            self._in, self.sorted = True, a.get("data-sorted")
        if not self._in:
            return
        if tag == "th":
            self.keys.append(a["data-key"])
        elif tag == "tr" and "data-group" in a:
            self._row = []
        elif tag == "td":
            self._cell = [a.get("data-value"), ""]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row.append(tuple(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        elif tag == "table":
            self._in = False


def _parse(text) -> _Table:
    p = _Table()
    p.feed(text)
    return p


def _check_numbers(parsed: _Table, summary: pd.DataFrame):
    """Every cell's data-value equals the summary's value (exactly, for floats)."""
    by_group = summary.set_index("task")
    assert len(parsed.rows) == len(summary)
    for row in parsed.rows:
        cells = dict(zip(parsed.keys, row))
        expect = by_group.loc[cells["task"][0]]
        for key, (value, _) in cells.items():
            want = expect[key] if key != "task" else cells["task"][0]
            if isinstance(want, str):
                assert value == want, key
            elif pd.isna(want):
                assert value == "", key
            else:
                assert float(value) == float(want), key


def test_html_is_self_contained_and_numbers_equal_the_summary(many, written):
    out, text = written
    parsed = _parse(text)
    assert parsed.external == []
    assert "http://" not in text and "https://" not in text
    assert parsed.keys[:3] == ["task", "verdict", "robustness"]
    _check_numbers(parsed, many.summary())
    assert re.search(r'<p class="headline" id="headline">1 of 5 tasks show inverse scaling '
                     r"\(BH q \u2264 0.05\)</p>", text)
    assert text.count('src="data:image/png;base64,') == len(many) == 4


def test_user_strings_are_escaped(written):
    _, text = written
    assert "<script>alert" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; | `tick`" in text


def test_per_group_reports_are_written_and_linked(many, written):
    out, text = written
    folder = out.with_name("screen_files")
    for key in many:
        name = f"{group_slug(key)}.html"
        assert (folder / name).exists()
        assert f'href="screen_files/{name}"' in text
        assert "<script>alert" not in (folder / name).read_text(encoding="utf-8")
    assert len(list(folder.iterdir())) == len(many)


def test_markdown_summary_escapes_and_links(many, written):
    out, _ = written
    md = render_screen(many, "markdown", out=out.with_suffix(".md"))
    assert md.startswith("# Scaling screen: 5 groups\n\n**1 of 5 tasks show inverse scaling")
    lines = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(lines) == 1 + 5
    assert r"&lt;script&gt;alert('x')&lt;/script&gt; \| \`tick\`" in md
    assert f"](screen_files/{group_slug('task00')}.html)" in md
    assert "not fitted" in md or "error" in md
    for line in lines[1:]:              # every row has as many cells as the header
        assert len(re.split(r"(?<!\\)\|", line)) == len(re.split(r"(?<!\\)\|", lines[0]))


def test_md_escape():
    assert md_escape("a|b<c>`d`\n") == r"a\|b&lt;c&gt;\`d\` "
    assert md_escape(None) == ""


def test_group_slugs_are_safe_and_unique():
    a, b = group_slug("a/b"), group_slug("a:b")
    assert a != b and re.fullmatch(r"[A-Za-z0-9._-]+", a)
    assert group_slug(("task", "acc,none")).startswith("task_acc_none-")


def test_plot_many_draws_one_panel_per_fitted_group(many):
    import matplotlib.pyplot as plt

    fig = many.plot()
    try:
        visible = [ax for ax in fig.axes if ax.get_visible()]
        assert len(visible) == len(many)
        assert visible[0].get_title().startswith("task00: inverse (q = ")
    finally:
        plt.close(fig)
    fig = plot_many(many, max_panels=2, ncols=2)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2
    plt.close(fig)


def test_report_method_renders_the_screen(many):
    assert many.report("markdown") == render_screen(many, "markdown")


# ------------------------------------------------------------------------------ browser
def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed; CI installs it in .ci/run (apt-get install "
                    "chromium)")
    pytest.skip("chromium is not installed (CI installs it)")


def _dump_dom(browser, url) -> str:
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-extensions", "--virtual-time-budget=5000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.parametrize("spec, column, descending", [("p", "p", False),
                                                     ("-slope", "slope", True)])
def test_the_table_renders_and_sorts_in_a_headless_browser(many, written, spec, column,
                                                           descending):
    browser = _chromium()
    out, _ = written
    dom = _dump_dom(browser, out.resolve().as_uri() + f"#sort={spec}")
    parsed = _parse(dom)
    assert parsed.sorted == f"{column}:{'desc' if descending else 'asc'}"
    _check_numbers(parsed, many.summary())
    idx = parsed.keys.index(column)
    values = [float(r[idx][0]) for r in parsed.rows if r[idx][0] != ""]
    assert values == sorted(values, reverse=descending)
    assert all(r[idx][0] == "" for r in parsed.rows[len(values):])   # missing values last
    expected = many.summary().sort_values(column, ascending=not descending,
                                          na_position="last")["task"].tolist()
    assert [r[0][0] for r in parsed.rows] == expected
    assert 'aria-sort="' + ("descending" if descending else "ascending") in dom


def test_unsorted_page_keeps_table_order_in_the_browser(many, written):
    browser = _chromium()
    out, _ = written
    parsed = _parse(_dump_dom(browser, out.resolve().as_uri()))
    assert parsed.sorted is None
    assert [r[0][0] for r in parsed.rows] == list(many.summary()["task"])


# ------------------------------------------------------------------------------ CLI
def test_cli_screen_prints_the_summary_and_writes_the_documents(table, tmp_path, capsys):
    csv = tmp_path / "tasks.csv"
    table[table["task"].isin(["task00", "task01", "task03"])].to_csv(csv, index=False)
    out = tmp_path / "s.html"
    code = main(["screen", str(csv), "--n-boot", "200", "--seed", "7", "-o", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "1 of 3 tasks show inverse scaling (BH q \u2264 0.05)" in printed
    assert "family 'fam1' has 2 model sizes" in printed
    assert out.exists() and out.with_suffix(".md").exists()
    assert (tmp_path / "s_files").is_dir()
    code = main(["screen", str(csv), "--n-boot", "200", "--seed", "7", "--n-jobs", "2",
                 "--json", "-o", str(out)])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["seed"] == 7
    again = fit_many(csv, n_boot=200, rng=7, progress=False).summary()
    got = pd.DataFrame(data["summary"])
    np.testing.assert_array_equal(got["p_bh"].astype(float), again["p_bh"].astype(float))
    assert got["verdict"].tolist() == again["verdict"].tolist()


def test_cli_screen_output_must_be_html(tmp_path, capsys):
    assert main(["screen", "x.csv", "-o", str(tmp_path / "s.md")]) == 2
    assert "must end in .html" in capsys.readouterr().err
