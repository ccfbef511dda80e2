"""Tests of the criterion report: parsed with a real HTML parser (``html.parser``).

Every image must decode as a PNG, no external URL may appear, every criterion must have its
traffic light and its section, and every number must equal the result object's.
"""

import base64
import io
import shlex
import warnings
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from statsmodels.stats.multitest import multipletests  # noqa: E402

from scalingfit import (DataValidationError, StatisticalWarning, fit_trend,  # noqa: E402
                        load_results)
from scalingfit.claims import check_claim  # noqa: E402
from scalingfit.cli import main  # noqa: E402
from scalingfit.assessment import CRITERIA, assess_criteria  # noqa: E402
from scalingfit.multitask import report_tasks  # noqa: E402
from scalingfit.report import render_document  # noqa: E402
from scalingfit.repro import call_options as _call_options  # noqa: E402
from scalingfit.verdicts import claim_p_value  # noqa: E402
from scalingfit.simulate import simulate_results  # noqa: E402

N_BOOT = 200
SYNTH = "data/synthetic_families.csv"


# ------------------------------------------------------------------ a small DOM
class Node:
    def __init__(self, tag, attrs, parent=None):
        self.tag, self.attrs, self.parent = tag, dict(attrs), parent
        self.children = []  # Nodes and text, in document order

    def iter(self):
        yield self
        for c in self.children:
            if isinstance(c, Node):
                yield from c.iter()

    def find_all(self, tag=None, **attrs):
        return [n for n in self.iter() if (tag is None or n.tag == tag)
                and all(n.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def all_text(self):
        return "".join(c.all_text() if isinstance(c, Node) else c for c in self.children)


class TreeBuilder(HTMLParser):
    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("root", [])
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.cur)
        self.cur.children.append(node)
        if tag not in self.VOID:
            self.cur = node

    def handle_endtag(self, tag):
        node = self.cur
        while node is not self.root and node.tag != tag:
            node = node.parent
        assert node.tag == tag, f"unbalanced </{tag}>"
        self.cur = node.parent

    def handle_data(self, data):
        self.cur.children.append(data)


def parse(text):
    builder = TreeBuilder()
    builder.feed(text)
    builder.close()
    assert builder.cur is builder.root, "unclosed elements"
    return builder.root


def fmt(v, digits=3):
    return f"{v:.{digits}g}"


# ------------------------------------------------------------------ fixtures
def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        return fn(*args, **kwargs)


@pytest.fixture(scope="module")
def table():
    return load_results(SYNTH)


@pytest.fixture(scope="module")
def result(table):
    return _quiet(fit_trend, table, n_boot=N_BOOT, rng=0)


@pytest.fixture(scope="module")
def page(result, table, tmp_path_factory):
    out = tmp_path_factory.mktemp("html") / "report.html"
    text = _quiet(result.report, format="html", claim="inverse", data=table, source=SYNTH,
                  out=str(out))
    assert out.read_text(encoding="utf-8") == text
    return text


@pytest.fixture(scope="module")
def dom(page):
    return parse(page)


@pytest.fixture(scope="module")
def check(table):
    """check_claim with the options the report passes (the result's level, replicates, seed)."""
    return _quiet(check_claim, table, "inverse", alpha=0.05, n_boot=N_BOOT, rng=0)


@pytest.fixture(scope="module")
def bayes(table):
    """A small Bayesian fit (2 chains x 300 draws; ~20-60 s), shared by the Bayes tests."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_trend(table, method="bayes", rng=0, draws=300, tune=300, chains=2,
                         n_boot=N_BOOT)


@pytest.fixture(scope="module")
def bayes_dom(bayes, table):
    return parse(_quiet(render_document, bayes, claim="inverse", data=table, source=SYNTH))


def _lights(dom, prefix=""):
    (t,) = dom.find_all("table", id=f"{prefix}criteria")
    return {r.attrs["data-criterion"]: r for r in t.find_all("tr")}


def _reason(row):
    return row.find_all("td")[3].all_text()


def _span_numbers(dom):
    return [(n.attrs["data-field"], n.attrs["data-value"])
            for n in dom.find_all("span", **{"class": "num"})]


# ------------------------------------------------------------------ self-contained HTML
def test_every_image_is_an_embedded_png_that_decodes(dom):
    imgs = dom.find_all("img")
    assert len(imgs) >= 3  # trend, family panels, slope distribution
    for img in imgs:
        src = img.attrs["src"]
        assert src.startswith("data:image/png;base64,")
        arr = mpimg.imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1])), format="png")
        assert arr.ndim == 3 and arr.shape[0] > 100 and arr.shape[1] > 100
        assert img.attrs["alt"]


def test_no_external_url_script_or_stylesheet(page, dom):
    assert "://" not in page
    assert not dom.find_all("script") and not dom.find_all("link") and not dom.find_all("iframe")
    for node in dom.iter():
        for key in ("href", "src", "action"):
            v = node.attrs.get(key)
            if v is not None:
                assert v.startswith(("#", "data:image/png;base64,")), (key, v[:60])
    assert "@import" not in page and "url(" not in page
    assert "@media print" in page  # printable


def test_every_criterion_has_a_light_and_a_section(dom):
    (lights_table,) = dom.find_all("table", id="criteria")
    rows = lights_table.find_all("tr")
    assert [r.attrs["data-criterion"] for r in rows] == list(CRITERIA)
    for row in rows:
        key = row.attrs["data-criterion"]
        assert row.attrs["data-status"] in ("pass", "warn", "fail", "na")
        cells = row.find_all("td")
        assert cells[1].all_text() == CRITERIA[key]
        assert len(cells[3].all_text()) > 20  # a one-line reason
        (section,) = dom.find_all("section", data_criterion=key)
        assert section.attrs["id"] == f"crit-{key}"
        assert cells[1].find_all("a")[0].attrs["href"] == f"#crit-{key}"
        assert section.find_all("h2")[0].all_text().startswith(CRITERIA[key])


def test_header_shows_task_counts_and_verdict(dom, result):
    facts = {dt.all_text(): dd.all_text() for dt, dd in zip(dom.find_all("dt"),
                                                            dom.find_all("dd"))}
    assert facts["task"] == "synthetic-inverse"
    assert facts["families"] == "3 (fam0, fam1, fam2)"
    assert facts["models"] == "24"
    assert facts["examples"] == "400 per model"
    (verdict,) = dom.find_all("div", **{"class": "verdict"})
    assert verdict.attrs["data-shape"] == result.shape == "inverse"
    assert "larger models do worse" in verdict.all_text()


# ------------------------------------------------------------------ numbers equal the result
def _resolve(result, field):
    head, _, key = field.partition(".")
    if field == "shape":
        return result.shape
    if head == "pooled":
        return result.pooled[key]
    if head == "meta":
        return result.meta[key]
    if field == "claim.p_value":
        return claim_p_value(result.pooled, "inverse", 1)
    raise KeyError(field)


def test_inline_numbers_equal_the_result(dom, result):
    nums = dom.find_all("span", **{"class": "num"})
    assert {n.attrs["data-field"] for n in nums} >= {"meta.n_models", "meta.n_families",
                                                     "meta.n_examples", "claim.p_value"}
    for n in nums:
        expected = _resolve(result, n.attrs["data-field"])
        value = n.attrs["data-value"]
        if isinstance(expected, float):
            assert float(value) == expected
        else:
            assert value == str(expected)
    (p,) = [n for n in nums if n.attrs["data-field"] == "claim.p_value"]
    assert float(p.attrs["data-value"]) == max(result.pooled["p_gate"], result.pooled["p_value"])
    assert p.all_text() == fmt(float(p.attrs["data-value"]), 2)


def _table_rows(dom, table_id):
    (table,) = dom.find_all("table", id=table_id)
    return table.find_all("tbody")[0].find_all("tr")


def test_family_table_equals_result(dom, result):
    rows = _table_rows(dom, "families")
    expected = pd.concat([result.families, pd.DataFrame([result.pooled])], ignore_index=True)
    assert [r.attrs["data-key"] for r in rows] == ["fam0", "fam1", "fam2", "pooled"]
    for row, (_, exp) in zip(rows, expected.iterrows()):
        for cell in row.find_all("td"):
            col = cell.attrs["data-col"]
            want = exp[col]
            if isinstance(want, float) and col in ("slope", "ci_lower", "ci_upper", "tau2",
                                                   "total_change"):
                assert float(cell.attrs["data-value"]) == want
                assert cell.all_text() == fmt(want)
            elif col in ("p_value", "p_gate"):
                assert float(cell.attrs["data-value"]) == want
                assert cell.all_text() == fmt(want, 2)


def test_model_table_equals_result(dom, result):
    rows = _table_rows(dom, "models")
    assert len(rows) == len(result.models)
    for row, (_, exp) in zip(rows, result.models.iterrows()):
        assert row.attrs["data-key"] == exp["model"]
        cells = {c.attrs["data-col"]: c for c in row.find_all("td")}
        for col in ("score", "se", "ci_lower", "ci_upper", "x"):
            assert float(cells[col].attrs["data-value"]) == exp[col]
        assert cells["score"].all_text() == fmt(exp["score"], 4)


def test_selection_and_claim_tables_equal_result(dom, result):
    rows = _table_rows(dom, "selection")
    assert len(rows) == len(result.selection)
    for row, (_, exp) in zip(rows, result.selection.iterrows()):
        cells = {c.attrs["data-col"]: c for c in row.find_all("td")}
        assert cells["curve"].all_text() == exp["curve"]
        assert float(cells["aicc"].attrs["data-value"]) == exp["aicc"]
    holm = multipletests([claim_p_value(r, "inverse") for r in
                          result.families.to_dict(orient="records")], method="holm")[1]
    rows = _table_rows(dom, "claim_families")
    got = [float(r.find_all("td", data_col="p_holm")[0].attrs["data-value"]) for r in rows]
    np.testing.assert_allclose(got, holm, rtol=1e-12)


def test_diagnostic_notes_are_numbered_in_order(dom, result):
    (ol,) = dom.find_all("ol", **{"class": "notes"})
    items = ol.find_all("li")
    assert [li.attrs["data-code"] for li in items] == list(result.diagnostics["code"])
    assert len(items) == len(result.diagnostics) > 0
    assert all(li.all_text().endswith(msg) for li, msg in zip(items, result.diagnostics["message"]))


def _assert_table_equals(dom, table_id, df):
    """Every cell of the HTML table ``table_id`` holds the value (data-value, full precision)
    and the rounded text of the same cell of ``df``."""
    rows = _table_rows(dom, table_id)
    assert len(rows) == len(df) > 0
    for row, (_, exp) in zip(rows, df.iterrows()):
        cells = {c.attrs["data-col"]: c for c in row.find_all("td")}
        assert set(cells) == {c for c in df.columns if c != "details"}
        for col, cell in cells.items():
            want, value = exp[col], cell.attrs["data-value"]
            if isinstance(want, (bool, np.bool_)):
                assert value == str(bool(want))
            elif isinstance(want, (float, np.floating)):
                np.testing.assert_equal(float(value), float(want))
                if np.isfinite(want):
                    assert cell.all_text() == fmt(want, 2 if str(col).startswith("p_") else 3)
            else:
                assert value == str(want)


def test_strength_generality_and_checks_tables_equal_the_result(dom, result, check):
    _assert_table_equals(dom, "strength", result.strength)
    _assert_table_equals(dom, "generality", result.generality)
    _assert_table_equals(dom, "checks", check.checks)
    # the strength table is scalingfit.evidence's: its pooled slope is the pooled slope
    st = result.strength.set_index(["family", "quantity"])
    assert st.loc[("pooled", "slope_per_decade"), "estimate"] == result.pooled["slope"]


def test_criterion_reasons_quote_the_result_numbers(dom, result, check):
    p, lights = result.pooled, _lights(dom)
    pc = max(p["p_gate"], p["p_value"])
    assert _reason(lights["trend_strength"]) == (
        f"pooled slope {fmt(p['slope'])} accuracy per 10x parameters [{fmt(p['ci_lower'])}, "
        f"{fmt(p['ci_upper'])}], change over the range {fmt(p['total_change'])}, p of the "
        f"claim = {fmt(pc, 2)}.")
    holm = multipletests([claim_p_value(r, "inverse") for r in
                          result.families.to_dict(orient="records")], method="holm")[1]
    k, same = int((holm <= result.meta["alpha"]).sum()), int((result.families["slope"] < 0).sum())
    assert _reason(lights["generality"]) == (
        f"{k} of 3 families show inverse after Holm correction; {same} of 3 point in the "
        "claimed direction.")
    failed = list(check.checks.loc[~check.checks["passed"].astype(bool), "check"])
    assert _reason(lights["noise"]) == (
        f"the inverse claim {'survives' if check.survives else 'does not survive'} "
        f"(p = {fmt(check.p_value, 2)})" + (f"; failed checks: {', '.join(failed)}"
                                             if failed else "") + ".")
    assert _reason(lights["coverage"]) == (
        "no subtask or variant column, so agreement across prompt variants is untested; "
        f"{result.meta['n_examples']} examples per model; seed {result.meta['seed']} recorded.")
    for key, row in lights.items():  # each section opens with its light's reason
        (sec,) = dom.find_all("section", data_criterion=key)
        assert sec.find_all("p")[0].all_text() == _reason(row)


def test_verdict_sentence_and_lights_use_the_same_slope_units(dom, result):
    unit = "accuracy per 10x parameters"
    (verdict,) = dom.find_all("div", **{"class": "verdict"})
    assert f"slope {fmt(result.pooled['slope'])} {unit} [" in verdict.all_text()
    assert f"{fmt(result.pooled['slope'])} {unit} [" in _reason(_lights(dom)["trend_strength"])
    text = result.report("text")
    verdict_line = next(line for line in text.splitlines() if line.startswith("Verdict:"))
    strength_line = next(line for line in text.splitlines() if line.startswith("Strength"))
    assert unit in verdict_line and unit in strength_line
    assert "score per" not in text and "score per" not in verdict.all_text()


# ------------------------------------------------------------------ reproducibility
def test_reproducibility_section_and_its_command_reproduce_the_numbers(dom, result, tmp_path):
    (sec,) = dom.find_all("section", id="reproducibility")
    codes = [c.all_text() for c in sec.find_all("code")]
    py, cli = codes
    assert "rng=0" in py and "n_boot=200" in py and "claim='inverse'" in py
    assert cli.startswith("scalingfit report data/synthetic_families.csv --task "
                          "synthetic-inverse --n-boot 200 --seed 0 --claim inverse -o ")
    assert shlex.split(cli)[-1].endswith("report.html")
    cells = {r.find_all("td")[0].all_text(): r.find_all("td")[1].all_text()
             for r in _table_rows(dom, "versions")}
    assert cells["seed"] == "0" and cells["scalingfit"] == result.meta["version"]
    assert {"numpy", "scipy", "pandas", "statsmodels", "matplotlib", "python"} <= set(cells)
    # run the printed command: the numbers come out identical
    argv = shlex.split(cli)[1:]
    argv[-1] = str(tmp_path / "again.html")
    assert _quiet(main, argv) == 0
    again = parse((tmp_path / "again.html").read_text(encoding="utf-8"))
    key = lambda d: [(n.attrs["data-field"], n.attrs["data-value"])
                     for n in d.find_all("span", **{"class": "num"})]
    assert key(again) == key(dom)


def test_cli_chance_and_input_format_are_in_the_reproducing_command(tmp_path):
    src = tmp_path / "results.dat"  # a CSV without the suffix: needs --format csv
    src.write_bytes(Path(SYNTH).read_bytes())
    out = tmp_path / "c.html"
    argv = ["report", str(src), "--format", "csv", "--chance", "0.5", "--seed", "0",
            "--n-boot", str(N_BOOT), "--claim", "inverse", "-o", str(out)]
    assert _quiet(main, argv) == 0
    dom = parse(out.read_text(encoding="utf-8"))
    (sec,) = dom.find_all("section", id="reproducibility")
    py, cli = [c.all_text() for c in sec.find_all("code")]
    words = shlex.split(cli)
    assert words[words.index("--format") + 1] == "csv"
    assert float(words[words.index("--chance") + 1]) == 0.5
    assert f"load_results({str(src)!r}, task='synthetic-inverse', format='csv')" in py
    assert "chance=0.5" in py
    cells = {r.find_all("td")[0].all_text(): r.find_all("td")[1].all_text()
             for r in _table_rows(dom, "versions")}
    assert cells["chance level"] == "0.5"
    res = _quiet(fit_trend, load_results(src, format="csv"), n_boot=N_BOOT, rng=0, chance=0.5)
    assert res.meta["chance"] == 0.5
    notes = [li.attrs["data-code"] for li in dom.find_all("li")]
    assert notes == list(res.diagnostics["code"])
    # the printed command and the printed Python call reproduce the report
    words[-1] = str(tmp_path / "again.html")
    assert _quiet(main, words[1:]) == 0
    again = parse((tmp_path / "again.html").read_text(encoding="utf-8"))
    assert _span_numbers(again) == _span_numbers(dom)
    assert [li.attrs["data-code"] for li in again.find_all("li")] == notes
    _quiet(exec, py.replace(repr(str(out)), repr(str(tmp_path / "py.html"))), {})
    by_py = parse((tmp_path / "py.html").read_text(encoding="utf-8"))
    assert _span_numbers(by_py) == _span_numbers(dom)
    (row,) = [r for r in _table_rows(by_py, "versions")
              if r.find_all("td")[0].all_text() == "chance level"]
    assert row.find_all("td")[1].all_text() == "0.5"


# ------------------------------------------------------------------ criteria logic
def test_wrong_claim_fails_strength_and_noise(result):
    crit = {c.key: c for c in assess_criteria(result, "positive")}
    assert crit["trend_strength"].status == "fail"
    assert crit["noise"].status == "fail"
    assert crit["generality"].status == "fail"
    crit = {c.key: c for c in assess_criteria(result, "inverse")}
    assert crit["trend_strength"].status == crit["generality"].status == "pass"
    assert crit["coverage"].status == "na"
    assert crit["coverage"].reason.startswith("no subtask or variant column")


def test_single_family_generality_is_flagged():
    res = _quiet(fit_trend, "data/opt_isp_round1.csv", task="NeQA", n_boot=N_BOOT, rng=0)
    crit = {c.key: c for c in assess_criteria(res, "inverse")}
    assert crit["generality"].status == "warn"
    assert crit["generality"].reason == ("one family only: generality across model families is "
                                         "untested.")


def test_bad_claim_is_rejected_with_the_allowed_values(result):
    with pytest.raises(DataValidationError) as err:
        render_document(result, claim="downward")
    assert str(err.value) == ("claim must be one of ['positive', 'inverse', 'u_shaped', "
                              "'inverted_u', 'flat']; got 'downward'.")


def test_variant_column_drives_the_coverage_criterion():
    frames = []
    for i, shape in enumerate(("inverse", "inverse")):
        d = simulate_results(shape, n_families=2, n_models=6, n_examples=300, effect=1.2,
                             model_sd=0.02, rng=10 + i)
        frames.append(d.assign(variant=f"v{i}", example_id=d["example_id"] + f"-v{i}"))
    data = pd.concat(frames, ignore_index=True)
    res = _quiet(fit_trend, data, n_boot=N_BOOT, rng=0)
    text = _quiet(render_document, res, claim="inverse", data=data, plots=False)
    dom = parse(text)
    (row,) = dom.find_all("tr", data_criterion="coverage")
    assert row.attrs["data-status"] in ("pass", "warn")
    rows = _table_rows(dom, "coverage")
    assert [r.attrs["data-key"] for r in rows] == ["v0", "v1"]
    assert all(r.find_all("td", data_col="agrees")[0].all_text() == "yes" for r in rows)


# ------------------------------------------------------------------ markdown
def test_markdown_writes_pngs_beside_it(result, table, tmp_path):
    out = tmp_path / "appendix.md"
    text = _quiet(render_document, result, format="markdown", claim="inverse", data=table,
                  out=out)
    assert out.read_text(encoding="utf-8") == text
    pngs = sorted((tmp_path / "appendix_files").glob("*.png"))
    assert [p.name for p in pngs] == ["families.png", "influence.png", "power.png", "slopes.png",
                                      "trend.png"]
    for p in pngs:
        assert mpimg.imread(p).ndim == 3
        assert f"](appendix_files/{p.name})" in text
    assert "data:image" not in text and "://" not in text
    for title in CRITERIA.values():
        assert f"| {title} |" in text
    assert f"| fam0 | 8 | inverse | {fmt(result.families['slope'][0])} |" in text


# ------------------------------------------------------------------ several tasks
def test_report_tasks_summary_with_holm_and_bh(tmp_path):
    out = tmp_path / "tasks.html"
    text = _quiet(report_tasks, "data/opt_isp_round1.csv", claim="inverse", out=out,
                  n_boot=N_BOOT, rng=0, plots=False)
    dom = parse(text)
    rows = _table_rows(dom, "summary")
    by_task = {r.attrs["data-key"]: {c.attrs["data-col"]: c for c in r.find_all("td")}
               for r in rows}
    raw = pd.read_csv("data/opt_isp_round1.csv")
    assert list(by_task) == list(pd.unique(raw["task"]))
    assert by_task["redefine-math"]["verdict"].all_text() == "not fitted"
    assert "at least 3 models" in by_task["redefine-math"]["why"].all_text()
    fitted = [t for t in by_task if t != "redefine-math"]
    assert len(fitted) == 3
    p = np.array([float(by_task[t]["p"].attrs["data-value"]) for t in fitted])
    for col, method in (("p_holm", "holm"), ("p_bh", "fdr_bh")):
        got = [float(by_task[t][col].attrs["data-value"]) for t in fitted]
        np.testing.assert_allclose(got, multipletests(p, method=method)[1], rtol=1e-12)
    # each task's p is the claim's p of its own fit, and each task has its own section
    sections = {sec.find_all("h2")[0].all_text(): sec
                for sec in dom.find_all("section", **{"class": "task"})}
    assert list(sections) == [f"{t} \u00b7 accuracy" for t in fitted]
    for t in fitted:
        res = _quiet(fit_trend, "data/opt_isp_round1.csv", task=t, n_boot=N_BOOT, rng=0)
        assert by_task[t]["verdict"].all_text() == res.shape
        assert float(by_task[t]["slope"].attrs["data-value"]) == res.pooled["slope"]
        # the summary p is check_claim's (gate, shape test and null calibration together)
        sub = raw[raw["task"] == t]
        check = _quiet(check_claim, sub, "inverse", alpha=0.05, n_boot=N_BOOT, rng=0)
        assert float(by_task[t]["p"].attrs["data-value"]) == check.p_value
        assert check.p_value >= claim_p_value(res.pooled, "inverse")
        sec = sections[f"{t} \u00b7 accuracy"]
        assert len(sec.find_all("tr", data_criterion="noise")) == 1


def test_multi_task_report_has_a_power_plot_per_task():
    raw = pd.read_csv("data/opt_isp_round1.csv")
    two = raw[raw["task"].isin(["NeQA", "quote-repetition"])]
    dom = parse(_quiet(report_tasks, two, claim="inverse", n_boot=N_BOOT, rng=0))
    sections = dom.find_all("section", **{"class": "task"})
    assert len(sections) == 2
    for i, sec in enumerate(sections):
        (noise,) = sec.find_all("section", data_criterion="noise")
        (fig,) = noise.find_all("figure", id=f"fig-t{i}-power")
        src = fig.find_all("img")[0].attrs["src"]
        arr = mpimg.imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1])), format="png")
        assert arr.ndim == 3
        assert "power" in fig.find_all("figcaption")[0].all_text()


# ------------------------------------------------------------------ Bayesian results
@pytest.mark.slow
def test_bayes_trend_plot_draws_the_posterior_curve_and_band(bayes):
    import matplotlib.pyplot as plt

    from scalingfit import plotting

    ax = plotting.plot_trend(bayes)
    try:
        for fam in bayes.families["family"]:
            c = bayes.curves[(bayes.curves["family"] == fam)
                             & (bayes.curves["curve"] == "posterior")].sort_values("x")
            assert len(c)
            (line,) = [a for a in ax.get_children() if a.get_gid() == f"curve:{fam}:posterior"]
            np.testing.assert_array_equal(line.get_xdata(), c["x"].to_numpy())
            np.testing.assert_array_equal(line.get_ydata(), c["fitted"].to_numpy())
            assert [a for a in ax.get_children() if a.get_gid() == f"band:{fam}:posterior"]
            assert not [a for a in ax.get_children() if a.get_gid() == f"curve:{fam}:linear"]
    finally:
        plt.close("all")


@pytest.mark.slow
def test_bayes_lights_use_the_posterior_probability(bayes, bayes_dom, check):
    p, thr = bayes.pooled, bayes.meta["bayes"]["decision_threshold"]
    lights = _lights(bayes_dom)
    assert _reason(lights["trend_strength"]) == (
        f"posterior P(inverse) = {fmt(p['p_inverse'])} (a verdict needs >= {fmt(thr)}); "
        f"pooled slope {fmt(p['slope'])} accuracy per 10x parameters, 95% credible interval "
        f"[{fmt(p['ci_lower'])}, {fmt(p['ci_upper'])}], change over the range "
        f"{fmt(p['total_change'])}.")
    assert lights["trend_strength"].attrs["data-status"] == (
        "pass" if p["p_inverse"] >= thr and bayes.shape == "inverse" else "warn")
    fam = bayes.families
    k = int((fam["p_inverse"] >= thr).sum())
    assert _reason(lights["generality"]) == (
        f"{k} of 3 families have posterior P(inverse) >= {fmt(thr)}; 3 of 3 point in the "
        f"claimed direction; P(every family shows inverse, jointly) = "
        f"{fmt(p['p_all_inverse'])}; P(a new family shows inverse) = {fmt(p['p_new_inverse'])}.")
    rows = _table_rows(bayes_dom, "claim_families")
    got = [float(r.find_all("td", data_col="p_posterior")[0].attrs["data-value"]) for r in rows]
    assert got == list(fam["p_inverse"])
    # the noise checks are check_claim's (bootstrap engine), said so in the reason
    assert _reason(lights["noise"]).startswith(
        f"the inverse claim {'survives' if check.survives else 'does not survive'} "
        f"(p = {fmt(check.p_value, 2)}; scalingfit.claims checks with the bootstrap engine)")
    # the figure caption names the posterior curve
    (fig,) = bayes_dom.find_all("figure", id="fig-trend")
    assert "posterior median curve" in fig.find_all("figcaption")[0].all_text()
    # a claim the posterior rules out fails, quoting its posterior probability
    crit = {c.key: c for c in assess_criteria(bayes, "positive")}
    assert crit["trend_strength"].status == "fail"
    assert crit["trend_strength"].reason.startswith(
        f"posterior P(positive) = {fmt(p['p_positive'])} (a verdict needs >= {fmt(thr)})")


@pytest.mark.slow
def test_bayes_options_are_in_the_reproducing_call(bayes, bayes_dom):
    opts = _call_options(bayes.meta)
    assert {k: opts[k] for k in ("method", "draws", "tune", "chains", "rng")} == {
        "method": "bayes", "draws": 300, "tune": 300, "chains": 2, "rng": 0}
    (sec,) = bayes_dom.find_all("section", id="reproducibility")
    py, cli = [c.all_text() for c in sec.find_all("code")]
    assert "method='bayes', n_boot=200, draws=300, tune=300, chains=2, rng=0)" in py
    assert ("--method bayes --n-boot 200 --draws 300 --tune 300 --chains 2 --seed 0"
            in cli)
    assert "Options without a CLI flag" not in sec.all_text()
    # the printed command parses back into the same options of the fit
    from scalingfit.cli import _fit_kwargs, build_parser

    kw = _fit_kwargs(build_parser().parse_args(shlex.split(cli)[1:]))
    assert {k: kw[k] for k in ("method", "n_boot", "draws", "tune", "chains", "rng")} == {
        "method": "bayes", "n_boot": 200, "draws": 300, "tune": 300, "chains": 2, "rng": 0}
    assert not {"model", "compare", "target_accept", "decision_threshold"} & set(kw)


@pytest.mark.slow
def test_bayes_family_table_does_not_call_the_posterior_tail_a_p_value(bayes, bayes_dom):
    (table,) = bayes_dom.find_all("table", id="families")
    heads = [th.all_text() for th in table.find_all("th")]
    assert "posterior tail (slope), not a p-value" in heads
    assert "p (slope)" not in heads and "p (gate)" not in heads
    rows = {r.attrs["data-key"]: r for r in _table_rows(bayes_dom, "families")}
    for shape in ("positive", "inverse", "u_shaped", "inverted_u", "flat"):
        (cell,) = rows["pooled"].find_all("td", data_col=f"p_{shape}")
        assert float(cell.attrs["data-value"]) == bayes.pooled[f"p_{shape}"]


@pytest.mark.slow
def test_bayes_summary_row_quotes_posterior_not_p_values(bayes, check):
    """With a claim, the summary's p is check_claim's (bootstrap engine) or empty, never a
    posterior quantity; the posterior probability of the claim sits in its own column."""
    from scalingfit.engines import posterior_evidence
    from scalingfit.multitask import summary_row as _summary_row

    p = bayes.pooled
    row = _summary_row(bayes, "inverse", check)
    assert row["p"] == check.p_value
    assert (row["p_posterior"], row["posterior_of"]) == (p["p_inverse"], "inverse")
    row = _summary_row(bayes, "inverse", None)       # check_claim unavailable
    assert np.isnan(row["p"]) and row["p_posterior"] == p["p_inverse"]
    row = _summary_row(bayes, None, None)
    assert np.isnan(row["p"]) and row["posterior_of"] == bayes.shape
    # an inconclusive verdict quotes its most probable shape
    shapes = ("positive", "inverse", "u_shaped", "inverted_u", "flat")
    best = max(shapes, key=lambda s: p[f"p_{s}"])
    assert posterior_evidence(bayes.replace(shape="inconclusive")) == (best, p[f"p_{best}"])
    # the verdict line of a Bayesian task never quotes claim_p_value (a posterior tail)
    dom = parse(_quiet(render_document, bayes, claim="positive", plots=False))
    (verdict,) = dom.find_all("div", **{"class": "verdict"})
    assert "p of the positive claim" not in verdict.all_text()
    assert verdict.all_text().endswith(
        f"Posterior probability of the positive claim: {fmt(p['p_positive'])}.")


def test_multi_task_bayes_report_lists_posterior_probabilities(tmp_path):
    """Two Bayesian tasks without a claim: both are in the summary with their posterior
    probability; p and its Holm / BH adjustments stay empty (posterior probabilities are not
    p-values) and the text says why."""
    raw = pd.read_csv(SYNTH)
    two = pd.concat([raw, raw.assign(task="copy")], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = report_tasks(two, method="bayes", draws=200, tune=200, chains=2,
                            n_boot=N_BOOT, rng=0, plots=False)
    dom = parse(text)
    rows = {r.attrs["data-key"]: {c.attrs["data-col"]: c for c in r.find_all("td")}
            for r in _table_rows(dom, "summary")}
    assert list(rows) == ["synthetic-inverse", "copy"]
    assert int(dom.find_all("span", data_field="summary.n_fitted")[0].attrs["data-value"]) == 2
    sections = dom.find_all("section", **{"class": "task"})
    assert len(sections) == 2
    for i, (cells, sec) in enumerate(zip(rows.values(), sections)):
        shape = cells["verdict"].all_text()
        assert shape == sec.find_all("div", **{"class": "verdict"})[0].attrs["data-shape"]
        assert shape != "not fitted" and cells["why"].all_text() == "\u2013"
        # the posterior probability is the task section's pooled P(verdict)
        (pooled,) = [r for r in _table_rows(sec, f"t{i}-families")
                     if r.attrs["data-key"] == "pooled"]
        want = pooled.find_all("td", data_col=f"p_{shape}")[0].attrs["data-value"]
        assert cells["posterior_of"].all_text() == shape
        assert cells["p_posterior"].attrs["data-value"] == want
        assert 0.5 < float(want) <= 1
        for col in ("p", "p_holm", "p_bh"):
            assert cells[col].attrs["data-value"] == "nan"
        assert cells["holds_holm"].all_text() == "\u2013"
    (summary,) = [p for p in dom.find_all("p") if "Bayesian fits" in p.all_text()]
    assert (
        "a Bayesian verdict needs posterior probability >= 0.95 "
        "(meta['bayes']['decision_threshold']). A posterior probability is not a p-value: "
        "multiplicity corrections (Holm, Benjamini-Hochberg) apply to the bootstrap engine's "
        "p-values only") in summary.all_text()


# ------------------------------------------------------------------ the committed example
def test_committed_example_report_has_every_plot_and_its_screenshot():
    docs = Path(__file__).resolve().parents[1] / "docs"
    text = (docs / "example_report.html").read_text(encoding="utf-8")
    dom = parse(text)
    figs = {f.attrs["id"]: f for f in dom.find_all("figure")}
    assert set(figs) == {"fig-trend", "fig-families", "fig-slopes", "fig-influence",
                         "fig-power"}
    for fig in figs.values():
        (img,) = fig.find_all("img")
        arr = mpimg.imread(io.BytesIO(base64.b64decode(img.attrs["src"].split(",", 1)[1])),
                           format="png")
        assert arr.ndim == 3 and min(arr.shape[:2]) > 100
    # the noise plots sit in the noise section; no plot is replaced by an excuse
    (noise,) = dom.find_all("section", data_criterion="noise")
    assert {f.attrs["id"] for f in noise.find_all("figure")} == {"fig-influence", "fig-power"}
    assert "plot not shown" not in text and "not installed" not in text
    assert "://" not in text
    assert [r.attrs["data-criterion"] for r in _lights(dom).values()] == list(CRITERIA)
    (sec,) = dom.find_all("section", id="reproducibility")
    assert sec.find_all("code")[1].all_text() == (
        "scalingfit report data/synthetic_families.csv --task synthetic-inverse --seed 0 "
        "--claim inverse -o docs/example_report.html")
    top = mpimg.imread(docs / "example_report_top.png")
    assert top.shape[:2] == (1600, 1280)


# ------------------------------------------------------------------ CLI
def test_cli_report_html_and_markdown(tmp_path, capsys):
    out = tmp_path / "r.html"
    assert _quiet(main, ["report", SYNTH, "--claim", "inverse", "--seed", "0", "--n-boot", "200",
                         "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    dom = parse(out.read_text(encoding="utf-8"))
    assert len(dom.find_all("tr", data_criterion="trend_strength")) == 1
    md = tmp_path / "r.md"
    assert _quiet(main, ["report", SYNTH, "--seed", "0", "--n-boot", "200", "-o", str(md)]) == 0
    assert (tmp_path / "r_files" / "trend.png").exists()


def test_cli_multi_task_table_gives_one_report(tmp_path):
    out = tmp_path / "tasks.html"
    assert _quiet(main, ["report", "data/opt_isp_round1.csv", "--claim", "inverse", "--seed",
                         "0", "--n-boot", "200", "-o", str(out)]) == 0
    dom = parse(out.read_text(encoding="utf-8"))
    assert len(_table_rows(dom, "summary")) == 4


def test_cli_rejects_unknown_output_suffix(tmp_path, capsys):
    assert main(["report", SYNTH, "-o", str(tmp_path / "r.pdf")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"scalingfit: error: output {str(tmp_path / 'r.pdf')!r} must end in .html or .md (the "
        "report format is read from the suffix); got '.pdf'.")


@pytest.mark.parametrize("source, task", [(SYNTH, None), ("data/opt_isp_round1.csv", "NeQA"),
                                          ("data/opt_isp_round1.csv", "quote-repetition")])
def test_claim_p_value_agrees_with_the_gated_verdict(source, task):
    res = _quiet(fit_trend, source, task=task, n_boot=N_BOOT, rng=0)
    p = claim_p_value(res.pooled, "inverse", 1)
    assert (p <= res.meta["alpha"]) == (res.shape == "inverse")
    assert p == max(res.pooled["p_gate"], res.pooled["p_value"]) or res.pooled["slope"] > 0


def test_bayesian_coverage_says_its_levels_use_the_bootstrap_engine():
    """coverage_table refits each variant with the bootstrap engine; for a Bayesian result the
    coverage reason says so (the levels' shapes are not posterior verdicts)."""
    from scalingfit.assessment import _coverage

    res = fit_trend(simulate_results("inverse", rng=2), rng=0, n_boot=200)
    cov = pd.DataFrame({"column": "variant", "level": ["a", "b"], "shape": "inverse",
                        "agrees": True})
    boot = _coverage(res, "inverse", cov)
    bayes = _coverage(res.replace(meta={**res.meta, "method": "bayes"}), "inverse", cov)
    assert boot.status == bayes.status == "pass"
    assert "bootstrap engine" not in boot.reason
    assert bayes.reason.startswith("2 of 2 variant levels show inverse, 2 of 2 point the same "
                                   "way (levels refitted with the bootstrap engine);")
