"""Plots of a computed :class:`~scalingfit.TrendResult`: they draw, they never compute.

Every plotted number is read from the result (``models``, ``curves``, ``families``, ``pooled``,
``boot``, ``diagnostics``, ``strength``); matplotlib and seaborn are imported inside the functions
so that ``import scalingfit`` stays light. Each function accepts ``ax=`` and returns what it drew
on (an Axes, or a Figure for multi-panel plots), and works with the Agg backend.

Artists carry a ``gid`` so that tests and users can find them: ``"models:<family>"`` (points with
intervals), ``"curve:<family>:<curve>"`` and ``"band:<family>:<curve>"``, ``"chance"``,
``"turning_point"`` and ``"turning_point_ci"``, ``"slopes:<label>"``, ``"influence"``,
``"power"``.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from .exceptions import DataValidationError, OptionError
from .verdicts import U_SHAPES

__all__ = ["plot_trend", "plot_families", "plot_slope_distribution", "plot_influence",
           "plot_power", "influence_table", "power_table", "power_entry", "slope_draws"]

CURVE_NAMES = ("linear", "quadratic", "two_lines", "posterior")
_CURVE_WORDS = {"linear": "linear fit", "quadratic": "quadratic fit", "two_lines": "two lines",
                "posterior": "posterior median"}


# ---------------------------------------------------------------------------- small helpers
def _plain_text(draw):
    """Draw with mathtext off: family, model and task names are text, and one with dollar
    signs (``$\\frac{a}{$``) must print as written instead of being parsed (or failing to
    parse when the figure is saved). After drawing, every text of the figure is set plain
    (titles and tick labels exist before the plot function runs; none of ours uses mathtext)."""
    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        out = draw(*args, **kwargs)
        first = np.ravel(out)[0] if isinstance(out, np.ndarray) else out
        fig = getattr(first, "figure", first)
        for text in getattr(fig, "findobj", lambda *_: [])(_is_text):
            text.set_parse_math(False)
        return out
    return wrapper


def _is_text(artist) -> bool:
    return hasattr(artist, "set_parse_math")


def _axes(ax, figsize=(6.4, 4.2)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _palette(labels) -> dict:
    import seaborn as sns

    labels = list(labels)
    colors = sns.color_palette("colorblind", max(len(labels), 1))
    return {lab: colors[i % len(colors)] for i, lab in enumerate(labels)}


def x_label(result) -> str:
    """Axis label of the scale variable."""
    return "parameters" if result.meta.get("x", "n_params") == "n_params" else "training FLOPs"


def y_label(result) -> str:
    """Axis label of the score, with its direction."""
    metric = result.meta.get("metric") or "score"
    better = "higher" if result.meta.get("higher_is_better", True) else "lower"
    return f"{metric} ({better} is better)"


def slope_unit(result, times: str = "\u00d7") -> str:
    """Units of a slope: '<metric> per 10\u00d7 parameters' (``times='x'`` for plain text)."""
    return f"{result.meta.get('metric') or 'score'} per 10{times} {x_label(result)}"


def curvature_unit(result) -> str:
    """Units of a quadratic coefficient in log10(x): '<metric> per decade\u00b2 of parameters'."""
    return f"{result.meta.get('metric') or 'score'} per decade\u00b2 of {x_label(result)}"


def _finite(v) -> bool:
    try:
        return v is not None and bool(np.isfinite(float(v)))
    except (TypeError, ValueError):
        return False


def _family_row(result, family) -> dict:
    if family == "pooled":
        return dict(result.pooled)
    rows = result.families[result.families["family"] == family]
    return rows.iloc[0].to_dict() if len(rows) else {}


def verdict_curve(result, family=None, curve="auto"):
    """The fitted curve drawn for ``family``: the posterior curve for Bayesian results, else two
    lines for U-type verdicts and linear otherwise.

    ``family=None`` uses the pooled verdict. Returns None when the requested curve is absent.
    """
    if curve is None or not len(result.curves):
        return None
    curves = result.curves
    available = set(curves["curve"] if family is None else
                    curves.loc[curves["family"] == family, "curve"])
    if curve == "auto" and "posterior" in available:
        curve = "posterior"    # a Bayesian fit draws its own posterior mean curve and band
    elif curve == "auto":
        shape = result.shape if family is None else _family_row(result, family).get("shape")
        curve = "two_lines" if shape in U_SHAPES and "two_lines" in available else "linear"
    if curve not in CURVE_NAMES:
        raise OptionError(f"curve must be 'auto', None or one of {list(CURVE_NAMES)}; "
                          f"got {curve!r}")
    return curve if curve in available else None


def _draw_models(ax, models, color, label, dodge):
    x = models["x"].to_numpy(dtype=float) * 10.0 ** dodge
    y = models["score"].to_numpy(dtype=float)
    yerr = np.vstack([y - models["ci_lower"].to_numpy(dtype=float),
                      models["ci_upper"].to_numpy(dtype=float) - y])
    cont = ax.errorbar(x, y, yerr=yerr, fmt="o", ms=5, color=color, ecolor=color, elinewidth=1.2,
                       capsize=2.5, label=label, zorder=3)
    cont.lines[0].set_gid(f"models:{label}")
    return cont


def _draw_curve(ax, result, family, curve, color, band=True):
    c = result.curves[(result.curves["family"] == family) & (result.curves["curve"] == curve)]
    if not len(c):
        return None
    c = c.sort_values("x")
    bp = _family_row(result, family).get("breakpoint")
    if curve == "two_lines" and _finite(bp):
        # two separate lines: do not join them across the breakpoint
        gap = pd.DataFrame({"x": [float(bp)], "fitted": [np.nan], "ci_lower": [np.nan],
                            "ci_upper": [np.nan]})
        c = pd.concat([c[c["x"] < bp], gap, c[c["x"] >= bp]], ignore_index=True)
    (line,) = ax.plot(c["x"], c["fitted"], color=color, lw=2, zorder=2,
                      label=f"_{family} {_CURVE_WORDS[curve]}")
    line.set_gid(f"curve:{family}:{curve}")
    if band:
        poly = ax.fill_between(c["x"], c["ci_lower"], c["ci_upper"], color=color, alpha=0.15,
                               lw=0, zorder=1)
        poly.set_gid(f"band:{family}:{curve}")
    return line


def _draw_chance(ax, result, chance):
    chance = result.meta.get("chance") if chance is None else chance
    if chance is False or not _finite(chance):
        return None
    line = ax.axhline(float(chance), color="0.35", ls=":", lw=1.3, label="chance", zorder=0)
    line.set_gid("chance")
    return line


def _draw_turning_point(ax, row, color="0.2"):
    """Turning point (Lind-Mehlum, with Fieller interval) of a U-type verdict, else breakpoint."""
    if row.get("shape") not in U_SHAPES:
        return None
    if _finite(row.get("turning_point")):
        tp, label = float(row["turning_point"]), "turning point"
        lo, hi = row.get("tp_ci_lower"), row.get("tp_ci_upper")
    elif _finite(row.get("breakpoint")):
        tp, label, lo, hi = float(row["breakpoint"]), "two-lines breakpoint", None, None
    else:
        return None
    line = ax.axvline(tp, color=color, ls="--", lw=1.2, label=label, zorder=0)
    line.set_gid("turning_point")
    if _finite(lo) and _finite(hi) and float(lo) > 0:
        span = ax.axvspan(float(lo), float(hi), color=color, alpha=0.08, lw=0, zorder=0,
                          label=f"_{label} interval")
        span.set_gid("turning_point_ci")
    return line


# ---------------------------------------------------------------------------- trend
def _trend_curve(result, family):
    """Curve of ``family`` in the main plot: the posterior curve of a Bayesian result, else the
    curve of the *pooled* verdict (two lines for U types, linear otherwise), else linear."""
    for name in ("posterior", "two_lines" if result.shape in U_SHAPES else "linear", "linear"):
        if verdict_curve(result, family, name) is not None:
            return name
    return None


@_plain_text
def plot_trend(result, ax=None, *, families=None, curve="auto", band=True, chance=None,
               turning_point=True, dodge=0.015, legend=True, palette=None, title=None):
    """Score against model size (log x), per family, with the fitted curve of the verdict.

    Parameters
    ----------
    result : TrendResult
    ax : matplotlib.axes.Axes, optional
        Axes to draw on (default: a new figure).
    families : list of str, optional
        Families to draw (default: all).
    curve : {'auto', 'linear', 'quadratic', 'two_lines', 'posterior', None}
        Fitted curve per family: ``'auto'`` draws the posterior median curve of a Bayesian
        result (``method='bayes'``), else two lines for U-type pooled verdicts and the linear
        fit otherwise; None draws no curve.
    band : bool
        Shade the pointwise band of the curve (confidence band, or credible band for the
        posterior curve).
    chance : float or False, optional
        Chance level (default: ``result.meta['chance']`` when known); False hides it.
    turning_point : bool
        For U-type pooled verdicts, mark the turning point with its interval.
    dodge : float
        Horizontal offset between families, in decades of x (0 draws at the exact sizes).
    legend : bool
    palette : dict, optional
        Family -> colour.
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax)
    fams = list(result.families["family"]) if families is None else list(families)
    colors = palette or _palette(fams)
    k = len(fams)
    for i, fam in enumerate(fams):
        models = result.models[result.models["family"] == fam]
        _draw_models(ax, models, colors[fam], fam, dodge * (i - (k - 1) / 2))
        name = _trend_curve(result, fam) if curve == "auto" else verdict_curve(result, fam, curve)
        if name is not None:
            _draw_curve(ax, result, fam, name, colors[fam], band)
    _draw_chance(ax, result, chance)
    if turning_point:
        _draw_turning_point(ax, {**result.pooled, "shape": result.shape})
    ax.set_xscale("log")
    ax.set_xlabel(x_label(result).capitalize() + " (log scale)")
    ax.set_ylabel(y_label(result))
    if title is None:
        task = result.meta.get("task")
        title = (f"{task}: " if task else "") + f"verdict {result.shape.replace('_', '-')}"
    if title:
        ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    if legend:
        ax.legend(fontsize="small", frameon=False)
    return ax


@_plain_text
def plot_families(result, ax=None, *, col_wrap=3, sharey=True, curve="auto", band=True,
                  chance=None, panel_size=(3.2, 2.6), palette=None):
    """One panel per family: points with intervals, the family's own verdict curve and band.

    Parameters
    ----------
    result : TrendResult
    ax : sequence of Axes, optional
        At least one Axes per family (default: a new figure with ``col_wrap`` columns).
    col_wrap : int
    sharey : bool
    curve, band, chance
        As in :func:`plot_trend`; ``'auto'`` follows each family's verdict.
    panel_size : (float, float)
        Width and height of one panel in inches (new figures only).
    palette : dict, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fams = list(result.families["family"])
    colors = palette or _palette(fams)
    if ax is None:
        import matplotlib.pyplot as plt

        ncol = min(col_wrap, len(fams))
        nrow = int(np.ceil(len(fams) / ncol))
        fig, axes = plt.subplots(nrow, ncol, squeeze=False, sharex=True, sharey=sharey,
                                 figsize=(panel_size[0] * ncol, panel_size[1] * nrow),
                                 layout="constrained")
        axes = list(axes.ravel())
    else:
        axes = list(np.ravel(np.asarray(ax, dtype=object)))
        if len(axes) < len(fams):
            raise OptionError(f"ax holds {len(axes)} Axes; plot_families needs one per family "
                              f"({len(fams)}).")
        fig = axes[0].figure
    for a, fam in zip(axes, fams):
        row = _family_row(result, fam)
        _draw_models(a, result.models[result.models["family"] == fam], colors[fam], fam, 0.0)
        name = verdict_curve(result, fam, curve)
        if name is not None:
            _draw_curve(a, result, fam, name, colors[fam], band)
        _draw_chance(a, result, chance)
        _draw_turning_point(a, row, color=colors[fam])
        a.set_xscale("log")
        a.set_title(f"{fam}: {str(row.get('shape', '')).replace('_', '-')}", fontsize="medium")
        if _finite(row.get("slope")):
            a.text(0.03, 0.04, f"slope {row['slope']:+.3g} [{row['ci_lower']:+.3g}, "
                   f"{row['ci_upper']:+.3g}]", transform=a.transAxes, fontsize="x-small",
                   color="0.25")
        a.grid(True, alpha=0.3)
    for a in axes[len(fams):]:
        a.set_visible(False)
    fig.supxlabel(x_label(result).capitalize() + " (log scale)", fontsize="medium")
    fig.supylabel(y_label(result), fontsize="medium")
    return fig


# ---------------------------------------------------------------------------- slopes
def slope_draws(result) -> dict:
    """Replicate slopes per family (and 'pooled'): posterior draws when a posterior is present,
    else the bootstrap replicates of ``result.boot``. Labels without draws are left out."""
    draws = _posterior_slopes(result) if getattr(result, "posterior", None) is not None else {}
    if draws:
        return draws
    return {k: np.asarray(v, dtype=float) for k, v in (result.boot or {}).items()
            if isinstance(v, (np.ndarray, list)) and len(v)}


def _posterior_slopes(result) -> dict:
    post = getattr(result.posterior, "posterior", None)
    if post is None:
        return {}
    names = [v for v in post.data_vars if "slope" in str(v).lower()]
    fams = list(result.families["family"])
    out = {}
    # the Bayesian engine stores 'slope' (chain, draw, family) and 'pooled_slope' (chain, draw)
    for name in names:
        var = post[name]
        other = [d for d in var.dims if d not in ("chain", "draw")]
        stacked = var.stack(sample=("chain", "draw")).transpose(*other, "sample").values
        if not other:
            if len(fams) > 1 or not out:
                out["pooled"] = np.asarray(stacked, dtype=float).ravel()
        elif len(other) == 1 and stacked.shape[0] == len(fams):
            out.update({fam: np.asarray(stacked[i], dtype=float) for i, fam in enumerate(fams)})
    return out


@_plain_text
def plot_slope_distribution(result, ax=None, *, families=None, pooled=True, bins=None,
                            palette=None):
    """Bootstrap (or posterior) distribution of the slope per decade, per family and pooled.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    DataValidationError
        When the result holds no replicate slopes (e.g. rebuilt from JSON, which keeps only
        summaries).
    """
    draws = slope_draws(result)
    if not draws:
        raise DataValidationError(
            "result holds no replicate slopes (a result rebuilt from JSON keeps only their "
            "summary); refit with fit_trend to plot the distribution.")
    ax = _axes(ax)
    fams = [f for f in (list(result.families["family"]) if families is None else families)
            if f in draws]
    labels = fams + (["pooled"] if pooled and "pooled" in draws and len(fams) > 1 else [])
    colors = {**(palette or _palette(fams)), "pooled": "0.15"}
    allv = np.concatenate([draws[lab] for lab in labels])
    if bins is None:
        bins = int(np.clip(np.sqrt(len(draws[labels[0]])), 10, 40))
    edges = np.histogram_bin_edges(allv[np.isfinite(allv)], bins=bins)
    for lab in labels:
        _, _, patches = ax.hist(draws[lab], bins=edges, density=True, histtype="step",
                                color=colors[lab], lw=2.2 if lab == "pooled" else 1.4,
                                label=lab)
        for p in patches:
            p.set_gid(f"slopes:{lab}")
    zero = ax.axvline(0.0, color="0.4", ls="--", lw=1, label="no change")
    zero.set_gid("zero")
    source = "posterior" if getattr(result, "posterior", None) is not None and \
        _posterior_slopes(result) else "bootstrap"
    ax.set_xlabel(f"slope ({slope_unit(result)})")
    ax.set_ylabel("density")
    ax.set_title(f"{source.capitalize()} distribution of the slope "
                 f"({len(next(iter(draws.values())))} replicates)", fontsize="medium")
    ax.legend(fontsize="small", frameon=False)
    return ax


# ---------------------------------------------------------------------------- noise tables
#: columns of :func:`influence_table` (the first two required) and of :func:`power_table`
INFLUENCE_COLUMNS = ("dropped", "shape", "slope", "ci_lower", "ci_upper", "family", "x")
POWER_COLUMNS = ("effect", "n_examples", "power")


def _columns(rows, columns, n_required):
    """``rows`` (a DataFrame or records) with the known ``columns`` in their order; None when
    empty or when one of the first ``n_required`` columns is missing."""
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    if not len(df) or not set(columns[:n_required]) <= set(df.columns):
        return None
    return pd.DataFrame({c: df[c].to_numpy() for c in columns if c in df.columns})


def _noise(result):
    return result.meta.get("noise") or {}


def influence_table(result):
    """Verdict and slope when each model of the main label is dropped, or None.

    Read from ``result.meta['noise']['influence']`` (computed by
    :func:`scalingfit.evidence.influence_table`). Columns: ``dropped`` (model), ``shape``, and
    when known ``slope``, ``ci_lower``, ``ci_upper``, ``family``, ``x``.
    """
    rows = _noise(result).get("influence")
    return _columns(rows, INFLUENCE_COLUMNS, 2) if rows else None


def power_entry(result) -> dict:
    """The power analysis of the main label (``result.meta['noise']['power'][main_label]``):
    ``kind`` ('slope', or 'curvature' for U-type claims), the observed ``effect`` it is computed
    at, ``target`` power and the ``table``; empty when the result carries none."""
    noise = _noise(result)
    power = noise.get("power")
    if not isinstance(power, dict):
        return {}
    main = noise.get("main_label", "pooled")
    entry = power.get(main)
    if not isinstance(entry, dict) and len(power) == 1:
        entry = next(iter(power.values()))
    return dict(entry) if isinstance(entry, dict) else {}


def power_table(result):
    """Examples needed for 80% power against effect size, or None.

    The ``table`` of :func:`power_entry` (computed by
    :func:`scalingfit.evidence.power_analysis`). Columns: ``effect`` (slope per decade, or
    quadratic coefficient per decade\u00b2 when :func:`power_entry` has ``kind='curvature'``)
    and ``n_examples``; ``power`` when given.
    """
    rows = power_entry(result).get("table")
    return _columns(rows, POWER_COLUMNS, 2) if rows else None


@_plain_text
def plot_influence(result, ax=None, *, table=None):
    """Leave-one-model-out forest plot: the pooled slope and verdict when each model is dropped.

    Points whose verdict differs from the full-data verdict are drawn in red and labelled.

    Parameters
    ----------
    table : DataFrame, optional
        Columns ``dropped`` and ``shape``, optionally ``slope``, ``ci_lower``, ``ci_upper``
        (default: :func:`influence_table`).

    Raises
    ------
    DataValidationError
        When no influence table is available (it is computed by :mod:`scalingfit.evidence`).
    """
    tab = influence_table(result) if table is None else _columns(table, INFLUENCE_COLUMNS, 2)
    if tab is None:
        raise DataValidationError(
            "result holds no influence table (leave-one-model-out verdicts come from "
            "scalingfit.evidence); update scalingfit or pass table=.")
    ax = _axes(ax, figsize=(6.4, 0.28 * len(tab) + 1.4))
    y = np.arange(len(tab))[::-1]
    changed = tab["shape"].astype(str).to_numpy() != result.shape
    if "slope" in tab:
        s = tab["slope"].to_numpy(dtype=float)
        xerr = None
        if "ci_lower" in tab and "ci_upper" in tab:
            xerr = np.vstack([s - tab["ci_lower"].to_numpy(dtype=float),
                              tab["ci_upper"].to_numpy(dtype=float) - s])
        for mask, color in ((~changed, "#4c72b0"), (changed, "#c44e52")):
            if mask.any():
                cont = ax.errorbar(s[mask], y[mask], xerr=None if xerr is None else
                                   xerr[:, mask], fmt="o", color=color, capsize=2, ms=4)
                cont.lines[0].set_gid("influence")
        ax.axvline(float(result.pooled["slope"]), color="0.3", lw=1, label="all models")
        ax.axvline(0.0, color="0.6", ls="--", lw=1)
        ax.set_xlabel(f"pooled slope without the model ({slope_unit(result)})")
        xpos = ax.get_xlim()[1]
        for yi, shape, ch in zip(y, tab["shape"].astype(str), changed):
            ax.text(xpos, yi, f" {shape}", va="center", fontsize="x-small",
                    color="#c44e52" if ch else "0.35")
    else:
        pts = ax.scatter(np.where(changed, 1, 0), y, c=np.where(changed, "#c44e52", "#4c72b0"))
        pts.set_gid("influence")
        ax.set_xticks([0, 1], ["same verdict", "verdict changes"])
    ax.set_yticks(y, [f"- {m}" for m in tab["dropped"].astype(str)])
    ax.set_title(f"Influence: verdict '{result.shape}' without each model "
                 f"({int(changed.sum())} of {len(tab)} change it)", fontsize="medium")
    ax.grid(True, axis="x", alpha=0.3)
    return ax


@_plain_text
def plot_power(result, ax=None, *, table=None, target=None, kind=None):
    """Examples per model needed to detect an effect of each size (power ``target``).

    The effect is the slope per decade, or for U-type claims the curvature (quadratic
    coefficient per decade\u00b2) that the U-shape test needs, as in ``kind`` of
    :func:`power_entry`. The observed effect the power analysis was computed at (the pooled
    slope, or the observed curvature) and the current number of examples are marked.

    Parameters
    ----------
    table : DataFrame, optional
        Power table (default: :func:`power_table`).
    target : float, optional
        Power level of the table (default: the power analysis's, else 0.8).
    kind : {'slope', 'curvature'}, optional
        What the effect is (default: the power analysis's, else 'slope').

    Raises
    ------
    DataValidationError
        When no power table is available (it is computed by :mod:`scalingfit.evidence`).
    OptionError
        When ``kind`` is neither 'slope' nor 'curvature'.
    """
    tab = power_table(result) if table is None else _columns(table, POWER_COLUMNS, 2)
    if tab is None:
        raise DataValidationError(
            "result holds no power table (examples needed against effect size come from "
            "scalingfit.evidence); update scalingfit or pass table=.")
    entry = power_entry(result)
    kind = kind or entry.get("kind") or "slope"
    if kind not in ("slope", "curvature"):
        raise OptionError(f"kind must be 'slope' or 'curvature'; got {kind!r}")
    target = target if target is not None else entry.get("target", 0.8)
    ax = _axes(ax)
    tab = tab.assign(effect=np.abs(tab["effect"].astype(float))).sort_values("effect")
    (line,) = ax.plot(tab["effect"], tab["n_examples"].astype(float), "-o", ms=3, lw=2,
                      color="#4c72b0", label=f"examples for {target:.0%} power")
    line.set_gid("power")
    observed = entry.get("effect") if entry.get("kind", "slope") == kind else None
    if not _finite(observed) and kind == "slope":
        observed = result.pooled.get("slope")
    if _finite(observed):
        obs = ax.axvline(abs(float(observed)), color="#c44e52", ls="--", lw=1.2,
                         label=f"observed |{kind}|")
        obs.set_gid("observed_effect")
    if _finite(result.meta.get("n_examples")):
        cur = ax.axhline(float(result.meta["n_examples"]), color="0.4", ls=":", lw=1.2,
                         label="examples now")
        cur.set_gid("current_n")
    ax.set_xscale("log")
    ax.set_yscale("log")
    unit = slope_unit(result) if kind == "slope" else curvature_unit(result)
    ax.set_xlabel(f"|{kind}| ({unit})")
    ax.set_ylabel("examples per model")
    ax.set_title(f"Power: examples needed against the {kind}"
                 + (" (U-shape test)" if kind == "curvature" else ""), fontsize="medium")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize="small", frameon=False)
    return ax
