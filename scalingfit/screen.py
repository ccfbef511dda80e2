"""The screen document of :func:`scalingfit.fit_many`: many curves on one page.

:func:`render_screen` writes a self-contained HTML overview (inline CSS and JavaScript, plots as
base64 PNG data URIs, no external resource) with the headline ("k of T tasks show inverse
scaling (BH q <= 0.05)"), a sortable summary table (click a header; ``#sort=p`` or
``#sort=-slope`` in the URL sorts on load), one small plot per group and, beside it in
``<stem>_files/``, each group's full criterion report (:func:`scalingfit.report.
render_document`); or the same summary as Markdown. :func:`plot_many` draws the small
multiples as one figure. Every number is :meth:`ManyResult.summary`'s; this module only lays them out.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import math
import re
from pathlib import Path

import pandas as pd

from .report import render_document
from .exceptions import DataValidationError
from .many import ManyResult

__all__ = ["render_screen", "plot_many", "md_escape", "group_slug"]

#: summary columns shown, with their header and kind ('str', 'num', 'p', 'int')
_COLUMNS = [("verdict", "verdict", "str"), ("robustness", "robustness", "str"),
            ("slope", "slope / 10\u00d7", "num"), ("ci_lower", "CI lower", "num"),
            ("ci_upper", "CI upper", "num"), ("p", "p", "p"), ("p_of", "p of", "str"),
            ("p_holm", "p (Holm)", "p"), ("p_bh", "p (BH)", "p"),
            ("n_families", "families", "int"), ("n_models", "models", "int"),
            ("n_examples", "examples", "int"), ("error", "error", "str")]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.5em}.headline{font-size:1.25em;font-weight:600;background:#f3f6fa;
padding:.6em .8em;border-left:4px solid #3a6ea5}
table{border-collapse:collapse;font-size:.85em;width:100%}
th,td{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
th{cursor:pointer;background:#fafafa;position:sticky;top:0;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.v-inverse td.verdict{color:#b03a2e;font-weight:600}
tr.v-positive td.verdict{color:#1e7b45;font-weight:600}
tr.v-error td{color:#888}td.error{max-width:28em;font-size:.9em}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:1em}
figure{margin:0;border:1px solid #e3e3e3;padding:.4em}figure img{width:100%;height:auto}
figcaption{font-size:.8em}.facts{font-size:.85em;color:#555}.wide{overflow-x:auto}
"""

# a tiny sorter: click a header to sort by its column (again to reverse); '#sort=p' or
# '#sort=-p' in the URL sorts on load. Cells sort by data-value (numbers as numbers, empty last)
_JS = """
(function(){
var table=document.getElementById('summary');if(!table)return;
var heads=table.tHead.rows[0].cells;
function key(td,num){var v=td.getAttribute('data-value');
 if(num){return (v===null||v==='')?null:parseFloat(v);}return v===null?td.textContent:v;}
function sortBy(i,desc){var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
 var num=heads[i].getAttribute('data-type')!=='str';
 rows.sort(function(a,b){var x=key(a.cells[i],num),y=key(b.cells[i],num);
  if(x===null&&y===null)return 0;if(x===null)return 1;if(y===null)return -1;
  var c=num?(x-y):String(x).localeCompare(String(y));return desc?-c:c;});
 rows.forEach(function(r){body.appendChild(r);});
 for(var j=0;j<heads.length;j++){heads[j].removeAttribute('aria-sort');}
 heads[i].setAttribute('aria-sort',desc?'descending':'ascending');
 table.setAttribute('data-sorted',heads[i].getAttribute('data-key')+(desc?':desc':':asc'));}
for(var i=0;i<heads.length;i++){(function(i){heads[i].addEventListener('click',function(){
 sortBy(i,heads[i].getAttribute('aria-sort')==='ascending');});})(i);}
var m=/[#&]sort=(-?)([A-Za-z0-9_]+)/.exec(window.location.hash);
if(m){for(var k=0;k<heads.length;k++){if(heads[k].getAttribute('data-key')===m[2]){
 sortBy(k,m[1]==='-');}}}
})();
"""


# ------------------------------------------------------------------------------- helpers
def md_escape(text) -> str:
    """A table cell for Markdown: ``|``, ``<``, ``>`` and backticks escaped, newlines joined."""
    s = "" if text is None else str(text)
    s = s.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")
    return s.replace("<", "&lt;").replace(">", "&gt;").replace("\r", " ").replace("\n", " ")


def group_slug(key) -> str:
    """A file name for a group's report: its label made safe, plus a short hash (unique)."""
    label = " \u00b7 ".join(key) if isinstance(key, tuple) else str(key)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._")[:60] or "group"
    digest = hashlib.sha1(label.encode("utf-8")).hexdigest()[:8]
    return f"{safe}-{digest}"


def _missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _text(v, kind) -> str:
    """A cell as shown: 4 significant digits, p-values below 1e-4 in scientific notation."""
    if _missing(v):
        return ""
    if kind == "int":
        return str(int(v))
    if kind in ("num", "p"):
        v = float(v)
        return f"{v:.2e}" if kind == "p" and 0 < v < 1e-4 else f"{v:.4g}"
    return str(v)


def _value(v, kind) -> str:
    """A cell's exact value (what the sorter and the tests read): ``repr`` of the float."""
    if _missing(v):
        return ""
    if kind == "int":
        return str(int(v))
    if kind in ("num", "p"):
        return repr(float(v))
    return str(v)


def _label(key) -> str:
    return " \u00b7 ".join(key) if isinstance(key, tuple) else str(key)


# ------------------------------------------------------------------------------- plots
def _draw(result, ax, title):
    result.plot(ax=ax)
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.xaxis.label.set_size(7)
    ax.yaxis.label.set_size(7)
    legend = ax.get_legend()
    if legend is not None:
        legend.remove()


def plot_many(many: ManyResult, axes=None, *, ncols: int = 4, max_panels: int | None = None,
              panel_size=(3.2, 2.4)):
    """Small multiples: each fitted group's curve (``TrendResult.plot``) in its own panel.

    Parameters
    ----------
    many : ManyResult
    axes : sequence of matplotlib Axes, optional
        One per panel; default a new figure with ``ncols`` columns.
    ncols : int
    max_panels : int, optional
        Draw only the first this many fitted groups.
    panel_size : (float, float)
        Inches per panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    keys = list(many)[:max_panels] if max_panels else list(many)
    if not keys:
        raise DataValidationError("no group was fitted: nothing to plot (see summary()).")
    if axes is None:
        nrows = math.ceil(len(keys) / ncols)
        fig, grid = plt.subplots(nrows, min(ncols, len(keys)), squeeze=False,
                                 figsize=(panel_size[0] * min(ncols, len(keys)),
                                          panel_size[1] * nrows))
        axes = list(grid.ravel())
        for ax in axes[len(keys):]:
            ax.set_visible(False)
    fig = axes[0].figure
    q = dict(zip(many.groups, many.summary()["p_bh"]))
    for key, ax in zip(keys, axes):
        _draw(many[key], ax, f"{_label(key)}: {many[key].shape} (q = {_text(q[key], 'p')})")
    fig.tight_layout()
    return fig


def _panel_png(result, title) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3.4, 2.5))
    try:
        _draw(result, ax, title)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
    finally:
        plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


# ------------------------------------------------------------------------------- HTML
def _html_table(many, summary, links) -> str:
    cols = [(c, c, "str") for c in many.by] + _COLUMNS
    head = "".join(f'<th data-key="{html.escape(k)}" data-type="{kind}">{html.escape(h)}</th>'
                   for k, h, kind in cols)
    rows = []
    for key, (_, r) in zip(many.groups, summary.iterrows()):
        cells = []
        for i, (k, _, kind) in enumerate(cols):
            text = html.escape(_text(r[k], kind))
            if i == 0 and key in links:
                text = f'<a href="{html.escape(links[key])}">{text}</a>'
            cls = f' class="{"num" if kind != "str" else k}"'
            cells.append(f'<td{cls} data-value="{html.escape(_value(r[k], kind))}">{text}</td>')
        verdict = re.sub(r"[^a-z_]", "", str(r["verdict"]))
        rows.append(f'<tr class="v-{verdict}" data-group="{html.escape(_label(key))}">'
                    + "".join(cells) + "</tr>")
    return (f'<div class="wide"><table id="summary"><thead><tr>{head}</tr></thead><tbody>'
            + "\n".join(rows) + "</tbody></table></div>")


def _figures(many, summary, links, plots) -> str:
    if not plots or not len(many):
        return ""
    q = dict(zip(many.groups, summary["p_bh"]))
    cards = []
    for key in many:
        r = many[key]
        label = _label(key)
        png = _panel_png(r, label)
        link = (f' <a href="{html.escape(links[key])}">full report</a>' if key in links else "")
        cards.append(
            f'<figure id="g-{group_slug(key)}"><img alt="{html.escape(label)}: score against '
            f'scale" src="data:image/png;base64,{png}"><figcaption><b>{html.escape(label)}'
            f"</b>: {html.escape(r.shape)}, q = {html.escape(_text(q[key], 'p'))}{link}"
            "</figcaption></figure>")
    return '<h2>Curves</h2><div class="grid">' + "\n".join(cards) + "</div>"


def _facts(many) -> str:
    m = many.meta
    opts = {k: v for k, v in (m.get("options") or {}).items() if v is not None}
    words = ", ".join(f"{k}={v!r}" for k, v in sorted(opts.items()))
    return (f"seed {m.get('seed')} (each group's seed: SeedSequence(seed, hash of its key)); "
            f"{len(many.groups)} groups by {', '.join(many.by)}, {len(many)} fitted, "
            f"{len(many.errors)} not fitted; options: {words or 'defaults'}; "
            f"scalingfit {m.get('version')}")


def _to_html(many, summary, headline, links, plots, title) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>"
            f'<p class="headline" id="headline">{html.escape(headline)}</p>'
            f'<p class="facts">{html.escape(_facts(many))}</p>'
            "<p>p: the verdict's own test (gate and shape) for a trend, the gate (not flat) "
            "otherwise; adjusted across groups by Holm (family-wise error) and "
            "Benjamini-Hochberg (false discovery rate). Robustness: bootstrap stability "
            "\u2265 0.8, no single model changes the verdict, no family left out changes it. "
            "Click a column header to sort.</p>"
            + _html_table(many, summary, links) + _figures(many, summary, links, plots)
            + f"<script>{_JS}</script></body></html>\n")


# ------------------------------------------------------------------------------- Markdown
def _to_markdown(many, summary, headline, links, title) -> str:
    cols = [(c, c, "str") for c in many.by] + _COLUMNS
    lines = [f"# {md_escape(title)}", "", f"**{md_escape(headline)}**", "",
             md_escape(_facts(many)), "",
             "| " + " | ".join(md_escape(h) for _, h, _ in cols) + " |",
             "|" + "|".join("---:" if kind != "str" else "---" for _, _, kind in cols) + "|"]
    for key, (_, r) in zip(many.groups, summary.iterrows()):
        cells = [md_escape(_text(r[k], kind)) for k, _, kind in cols]
        if key in links:
            cells[0] = f"[{cells[0]}]({links[key]})"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------- public
def _write_reports(many, folder: Path, rel: str, report_plots: bool) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    links = {}
    for key in many:
        name = f"{group_slug(key)}.html"
        render_document(many[key], format="html", out=folder / name, plots=report_plots,
                        title=f"Scaling report: {_label(key)}")
        links[key] = f"{rel}/{name}"
    return links


def render_screen(many: ManyResult, format: str = "html", out=None, *, reports: bool = True,
                  report_plots: bool = False, plots: bool = True, shape: str = "inverse",
                  title: str | None = None) -> str:
    """The screen document of a :class:`~scalingfit.many.ManyResult`.

    Parameters
    ----------
    many : ManyResult
    format : {'html', 'markdown'}
    out : path, optional
        File to write. With HTML and ``reports``, each fitted group's criterion report is
        written to ``<out stem>_files/<group>.html`` and linked from the table; the Markdown
        summary links to the same files when they exist.
    reports : bool
        Write the per-group reports (HTML with ``out`` only).
    report_plots : bool
        Draw the plots of each per-group report too (about 1.5 s a group; the overview's own
        small multiples are always drawn when ``plots``).
    plots : bool
        The small multiples of the HTML overview.
    shape : str
        The shape the headline counts ('inverse': "k of T tasks show inverse scaling").
    title : str, optional

    Returns
    -------
    str
        The document.
    """
    if format not in ("html", "markdown"):
        raise DataValidationError(f"format must be 'html' or 'markdown'; got {format!r}.")
    summary = many.summary()
    headline = many.headline(shape)
    title = title or f"Scaling screen: {len(many.groups)} groups"
    links = {}
    if out is not None:
        out = Path(out)
        folder = out.with_name(f"{out.stem}_files")
        if format == "html" and reports:
            links = _write_reports(many, folder, folder.name, report_plots)
        elif format == "markdown" and folder.is_dir():
            links = {k: f"{folder.name}/{group_slug(k)}.html" for k in many
                     if (folder / f"{group_slug(k)}.html").exists()}
    text = (_to_html(many, summary, headline, links, plots, title) if format == "html"
            else _to_markdown(many, summary, headline, links, title))
    if out is not None:
        out.write_text(text, encoding="utf-8")
    return text
