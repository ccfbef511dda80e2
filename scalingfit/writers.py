"""Writers: a list of blocks (:mod:`scalingfit.blocks`) as self-contained HTML or as Markdown,
and a fitted result as plain text.

HTML embeds the plots as base64 PNGs and all styling as inline CSS (no scripts, fonts or network
requests); every number carries its full-precision value in a ``data-value`` attribute so tests
and scripts can read the report back. Markdown writes the PNGs beside the file (or inlines them
as data URIs). The text writer is the one ``result.report("text")`` prints.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np
import pandas as pd

from ._version import __version__
from .blocks import NUMERIC_KINDS, STATUS, Num, Table, cell_text
from .engines import engine_view
from .exceptions import OptionError
from .wording import fmt, num, slope_words

__all__ = ["write_document", "render_text"]


# ------------------------------------------------------------------------------ HTML
_CSS = """
:root{--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--pass:#1a7f37;--warn:#9a6700;
--fail:#cf222e;--na:#6e7781}
*{box-sizing:border-box}
body{font:15px/1.5 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:var(--ink);
margin:0;background:#fff}
main{max-width:1080px;margin:0 auto;padding:28px 32px 48px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:32px 0 8px;padding-bottom:4px;
border-bottom:1px solid var(--line)}h3{font-size:16px;margin:20px 0 6px}
.subtitle{color:var(--muted);margin:0 0 16px}
dl.facts{display:grid;grid-template-columns:repeat(auto-fit,minmax(120px,1fr));gap:8px 20px;
margin:12px 0 16px;padding:12px 16px;background:var(--bg);border-radius:6px}
dl.facts dt{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
dl.facts dd{margin:0;font-weight:600}
.verdict{border-left:5px solid #0969da;background:#ddf4ff;padding:10px 14px;border-radius:4px;
margin:12px 0 18px;font-size:16px}
table{border-collapse:collapse;margin:8px 0 18px;font-size:13px;width:auto;max-width:100%}
caption{text-align:left;font-weight:600;padding:4px 0;color:var(--ink)}
th,td{border-bottom:1px solid var(--line);padding:4px 10px;text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600}td.num{text-align:right;
font-variant-numeric:tabular-nums}
table.lights{width:100%;font-size:14px}table.lights td{padding:8px 10px}
.light{font-size:22px;line-height:1;width:30px;text-align:center}
.st-pass .light,.st-pass .word{color:var(--pass)}.st-warn .light,.st-warn .word{color:var(--warn)}
.st-fail .light,.st-fail .word{color:var(--fail)}.st-na .light,.st-na .word{color:var(--na)}
.word{font-weight:700;white-space:nowrap;font-size:12px;text-transform:uppercase;
letter-spacing:.03em}
table.lights .word span{display:inline-block;min-width:92px;text-align:center;padding:2px 8px;
border-radius:10px;color:#fff;background:var(--na)}
table.lights .st-pass .word span{background:var(--pass)}
table.lights .st-warn .word span{background:var(--warn)}
table.lights .st-fail .word span{background:var(--fail)}
a{color:inherit;text-decoration:none;border-bottom:1px dotted var(--muted)}
section.criterion{border-left:4px solid var(--na);padding-left:14px;margin-top:10px}
section.st-pass{border-color:var(--pass)}section.st-warn{border-color:var(--warn)}
section.st-fail{border-color:var(--fail)}
figure{margin:10px 0 18px}figure img{max-width:100%;height:auto;border:1px solid var(--line);
border-radius:4px}figcaption{color:var(--muted);font-size:13px;margin-top:4px}
ol.notes li{margin:2px 0}.sev{font-size:11px;text-transform:uppercase;padding:1px 5px;
border-radius:3px;background:var(--bg);color:var(--muted);margin-right:6px}
.sev-warning{background:#fff8c5;color:var(--warn)}
pre{background:var(--bg);padding:10px 12px;border-radius:6px;overflow-x:auto;font-size:13px}
.muted{color:var(--muted);font-size:13px}.tablewrap{overflow-x:auto}
footer{color:var(--muted);font-size:12px;margin-top:36px}
@media print{main{max-width:none;padding:0}body{font-size:11pt}h2{break-after:avoid}
figure,table,section.criterion{break-inside:avoid}pre{white-space:pre-wrap}
.tablewrap{overflow:visible}}
"""


def _inline_html(parts) -> str:
    out = []
    for part in parts:
        if isinstance(part, Num):
            v = part.value
            val = repr(float(v)) if isinstance(v, (float, np.floating)) else html.escape(str(v))
            out.append(f'<span class="num" data-field="{html.escape(part.field)}" '
                       f'data-value="{val}">{html.escape(part.text())}</span>')
        else:
            out.append(html.escape(str(part)))
    return "".join(out)


def _md(text) -> str:
    """Text for Markdown with ``<`` as ``&lt;``: raw HTML in CommonMark (GitHub, mkdocs) starts
    with ``<``, so a user string (a model, family, task or metric name) can never become a tag;
    rendered, the entity reads as ``<`` itself. ``&`` and ``>`` stay readable in the source."""
    return str(text).replace("<", "&lt;")


def _inline_md(parts) -> str:
    return "".join(_md(p.text() if isinstance(p, Num) else p) for p in parts)


def _cell_value(v) -> str:
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    return html.escape(str(v))


def _html_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h, _ in t.columns)
    body = []
    for r in t.rows:
        key = f' data-key="{html.escape(str(r.get(t.key)))}"' if t.key else ""
        cells = []
        for col, _, kind in t.columns:
            v = r.get(col)
            cls = ' class="num"' if kind in NUMERIC_KINDS else ""
            cells.append(f'<td{cls} data-col="{html.escape(col)}" data-value="{_cell_value(v)}">'
                         f"{html.escape(cell_text(v, kind))}</td>")
        body.append(f"<tr{key}>{''.join(cells)}</tr>")
    src = f' data-source="{html.escape(t.source)}"' if t.source else ""
    return (f'<div class="tablewrap"><table id="{html.escape(t.id)}"{src}><caption>'
            f"{html.escape(t.caption)}</caption><thead><tr>{head}</tr></thead><tbody>"
            f"{''.join(body)}</tbody></table></div>")


def _to_html(blocks, title, subtitle) -> str:
    out = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            out.append(f'<h{b[1]} id="{html.escape(b[3])}">{html.escape(b[2])}</h{b[1]}>')
        elif kind == "p":
            cls = f' class="{b[2]}"' if len(b) > 2 else ""
            out.append(f"<p{cls}>{_inline_html(b[1])}</p>")
        elif kind == "facts":
            items = "".join(f"<div><dt>{html.escape(k)}</dt><dd>{_inline_html(v)}</dd></div>"
                            for k, v in b[1])
            out.append(f'<dl class="facts">{items}</dl>')
        elif kind == "verdict":
            out.append(f'<div class="verdict" data-shape="{html.escape(b[1])}">'
                       f"{_inline_html(b[2])}</div>")
        elif kind == "lights":
            rows = "".join(
                f'<tr class="criterion st-{st}" data-criterion="{key}" data-status="{st}">'
                f'<td class="light" aria-hidden="true">{STATUS[st][0]}</td>'
                f'<td><a href="#{html.escape(b[2])}crit-{key}">{html.escape(title)}'
                f'</a></td><td class="word"><span>{STATUS[st][1]}</span></td>'
                f"<td>{html.escape(reason)}</td>"
                "</tr>" for key, title, st, reason in b[1])
            out.append(f'<table class="lights" id="{html.escape(b[2])}criteria"><caption>'
                       'Criteria</caption><tbody>'
                       f"{rows}</tbody></table>")
        elif kind == "fig":
            _, name, png, alt, cap = b
            data = base64.b64encode(png).decode("ascii")
            out.append(f'<figure id="fig-{html.escape(name)}"><img alt="{html.escape(alt)}" '
                       f'src="data:image/png;base64,{data}"><figcaption>{html.escape(cap)}'
                       "</figcaption></figure>")
        elif kind == "table":
            out.append(_html_table(b[1]))
        elif kind == "notes":
            items = "".join(f'<li data-code="{html.escape(str(code))}"><span class="sev '
                            f'sev-{html.escape(str(sev))}">{html.escape(str(sev))}</span>'
                            f"{html.escape(str(msg))}</li>" for code, sev, msg in b[1])
            out.append(f'<ol class="notes">{items}</ol>')
        elif kind == "code":
            out.append(f'<pre><code class="language-{b[2]}">{html.escape(b[1])}</code></pre>')
        elif kind == "open":
            _, sid, key, st = b
            cls = f"criterion st-{st}" if st else key
            attr = f' data-criterion="{key}"' if st else ""
            out.append(f'<section id="{html.escape(sid)}" class="{cls}"{attr}>')
        elif kind == "close":
            out.append("</section>")
    body = "\n".join(out)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body><main>"
            f'<h1>{html.escape(title)}</h1><p class="subtitle">{html.escape(subtitle)}</p>\n'
            f"{body}\n<footer>Generated by scalingfit {html.escape(__version__)}. "
            "Self-contained: no external resources.</footer></main></body></html>\n")


# ------------------------------------------------------------------------------ Markdown
def _md_table(t: Table) -> str:
    esc = lambda s: _md(s).replace("|", "\\|").replace("\n", " ")
    lines = [f"**{esc(t.caption)}**", "",
             "| " + " | ".join(esc(h) for _, h, _ in t.columns) + " |",
             "|" + "|".join("---:" if k in NUMERIC_KINDS else "---"
                            for _, _, k in t.columns) + "|"]
    lines += ["| " + " | ".join(esc(cell_text(r.get(c), k)) for c, _, k in t.columns) + " |"
              for r in t.rows]
    return "\n".join(lines)


def _to_markdown(blocks, title, subtitle, image_dir=None, image_link=None) -> str:
    out = [f"# {_md(title)}", "", f"*{_md(subtitle)}*", ""]
    for b in blocks:
        kind = b[0]
        if kind == "h":
            out += [f"{'#' * b[1]} {_md(b[2])}", ""]
        elif kind == "p":
            out += [_inline_md(b[1]), ""]
        elif kind == "facts":
            out += [" \u00b7 ".join(f"**{_md(k)}**: {_inline_md(v)}" for k, v in b[1]), ""]
        elif kind == "verdict":
            out += [f"> **{_inline_md(b[2])}**", ""]
        elif kind == "lights":
            out += ["| | criterion | status | reason |", "|---|---|---|---|"]
            out += [f"| {STATUS[st][0]} | {_md(title)} | **{STATUS[st][1]}** | "
                    f"{_md(reason).replace('|', '/')} |"
                    for _, title, st, reason in b[1]]
            out.append("")
        elif kind == "fig":
            _, name, png, alt, cap = b
            if image_dir is not None:
                Path(image_dir).mkdir(parents=True, exist_ok=True)
                (Path(image_dir) / f"{name}.png").write_bytes(png)
                src = f"{image_link}/{name}.png"
            else:
                src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
            out += [f"![{_md(alt)}]({src})", "", f"*{_md(cap)}*", ""]
        elif kind == "table":
            out += [_md_table(b[1]), ""]
        elif kind == "notes":
            out += [f"{i}. ({sev}) {_md(msg)}" for i, (_, sev, msg) in enumerate(b[1], 1)] + [""]
        elif kind == "code":
            out += [f"```{b[2]}", b[1], "```", ""]
    return "\n".join(out)


def write_document(blocks, title, subtitle, format, out=None) -> str:
    """The document of ``blocks`` as ``'html'`` or ``'markdown'``; written to ``out`` when given
    (Markdown then writes its PNGs into ``<out stem>_files/`` beside it)."""
    if format == "html":
        text = _to_html(blocks, title, subtitle)
    elif format == "markdown":
        image_dir = link = None
        if out is not None:
            out = Path(out)
            image_dir, link = out.parent / f"{out.stem}_files", f"{out.stem}_files"
        text = _to_markdown(blocks, title, subtitle, image_dir, link)
    else:
        raise OptionError(f"format must be 'html' or 'markdown'; got {format!r}.")
    if out is not None:
        Path(out).write_text(text, encoding="utf-8")
    return text


# ------------------------------------------------------------------------------ text
def _table_text(df: pd.DataFrame) -> str:
    return df.to_string(index=False, float_format=lambda v: f"{v:.4g}")


def render_text(result) -> str:
    """The plain-text report of ``result`` (what ``result.report("text")`` returns)."""
    m = result.meta
    engine = engine_view(result)
    lines = [f"scalingfit {m['version']} -- task {m.get('task') or '(unnamed)'}, metric "
             f"{m.get('metric') or 'score'} ({'higher' if m['higher_is_better'] else 'lower'} is "
             f"better), x = {m['x']}, method = {m['method']}{engine.settings_words(m)}",
             f"{m['n_families']} families, {m['n_models']} models, "
             f"{m['n_examples'] or 'aggregated'} examples; alpha = {m['alpha']:.3g}, "
             f"flat margin = {fmt(m['flat_margin'])}, seed = {m['seed']}",
             "", f"Verdict: {result.shape} -- {engine.verdict_sentence(result)}", "",
             _table_text(result.summary())]
    note = engine.columns_note(m)
    if note:
        lines.append(note)
    lines += _criteria_lines(result) + _selection_lines(result)
    if len(result.diagnostics):
        lines += ["", "Notes:"]
        lines += [f"[{i + 1}] ({r.severity}) {r.message}"
                  for i, r in enumerate(result.diagnostics.itertuples())]
    return "\n".join(lines)


def _criteria_lines(result) -> list:
    """Trend strength, generality and noise in a few lines (the HTML report has the detail)."""
    noise = result.meta.get("noise") or {}
    main = noise.get("main_label", "pooled")
    lines = []
    st = result.strength
    if st is not None and len(st):
        rows = st[st["family"] == main].set_index("quantity")
        if "slope_per_decade" in rows.index:
            r = rows.loc["slope_per_decade"]
            text = (f"Strength ({main}): {fmt(r['estimate'])} {slope_words(result)} "
                    f"[{fmt(r['ci_lower'])}, {fmt(r['ci_upper'])}]")
            if "change_smallest_to_largest" in rows.index:
                c = rows.loc["change_smallest_to_largest"]
                paired = "paired" if result.meta.get("form") == "per_example" else "unpaired"
                text += (f"; smallest -> largest model {fmt(c['estimate'])} "
                         f"[{fmt(c['ci_lower'])}, {fmt(c['ci_upper'])}] ({paired})")
            if "snr" in rows.index:
                text += f"; signal-to-noise {fmt(abs(rows.loc['snr', 'estimate']))}"
            lines.append(text + ".")
    gen = result.generality
    if gen is not None and len(gen) and "shows_claim" in gen:
        fam = gen[gen["family"] != "pooled"]
        claim = fam["claim"].iloc[0] if len(fam) else noise.get("claim")
        text = (f"Generality: {int(fam['shows_claim'].fillna(False).astype(bool).sum())} of "
                f"{len(fam)} families show {claim} (Holm-adjusted)")
        pooled = gen[gen["family"] == "pooled"]
        if len(pooled) and np.isfinite(num(pooled["I2"].iloc[0])):
            text += (f"; heterogeneity I2 = {fmt(100 * pooled['I2'].iloc[0], 2)}%, "
                     f"p = {fmt(pooled['p_heterogeneity'].iloc[0])}")
        lines.append(text + ".")
    lines += _noise_line(noise, main)
    return [""] + lines if lines else []


def _noise_line(noise: dict, main: str) -> list:
    bits = []
    stab = (noise.get("stability") or {}).get(main)
    if stab:
        bits.append(f"{fmt(100 * stab['share'], 3)}% of {stab['n']} bootstrap replicates give "
                    f"'{stab['verdict']}'")
    null = noise.get("null") or {}
    if np.isfinite(num(null.get("p_value"))):
        bits.append(f"null-calibrated p = {fmt(null['p_value'])} ({null.get('n_sim')} "
                    f"simulations under the best {null.get('null', 'null')} curve)")
    infl = noise.get("influence") or []
    if infl:
        changed = [r["dropped"] for r in infl if r.get("changed")]
        bits.append(f"verdict unchanged when any one of {len(infl)} models is dropped"
                    if not changed else
                    f"verdict changes when dropping {', '.join(map(str, changed))}")
    power = (noise.get("power") or {}).get(main) or {}
    key = "mde_curvature" if power.get("kind") == "curvature" else "mde_slope"
    if np.isfinite(num(power.get(key))):
        bits.append(f"minimum detectable {power.get('kind', 'slope')} at 80% power "
                    f"{fmt(power[key])}")
    return ["Noise: " + "; ".join(bits) + "."] if bits else []


def _selection_lines(result) -> list:
    """Model selection by AICc: the best curve and its Akaike weight per family."""
    sel = result.selection
    if sel is None or not len(sel):
        return []
    # the bootstrap engine ranks by AICc; the Bayesian one (compare=True) by grouped LOO elpd
    by_loo = "aicc" not in sel.columns
    parts = []
    for fam, rows in sel.groupby("family", sort=False):
        best = rows.loc[rows["elpd_loo"].idxmax() if by_loo else rows["aicc"].idxmin()]
        parts.append(f"{fam} {best['curve']} (weight {fmt(best['weight'], 2)})")
    criterion = "grouped LOO (leave one model out)" if by_loo else "AICc"
    return ["", f"Best curve form by {criterion} (a fit, not a verdict: a quadratic may be "
                "monotone over the observed range): " + "; ".join(parts) + "."]
