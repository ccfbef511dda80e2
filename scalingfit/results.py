"""``TrendResult``: the immutable answer of :func:`scalingfit.fit_trend`."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .curves import design_matrix
from .data import ModelScores
from .diagnostics import NOTE_COLUMNS, core_notes, warn_notes
from .verdicts import CLAIMS

__all__ = ["TrendResult", "jsonable"]

_CURVE_GRID = 50


def jsonable(obj):
    """Convert numpy / pandas values inside ``obj`` to plain JSON types (non-finite -> None)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, pd.DataFrame):
        return [jsonable(r) for r in obj.to_dict(orient="records")]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if obj is None or isinstance(obj, str):
        return obj
    if obj is pd.NA or obj is pd.NaT:
        return None
    return str(obj)


def _to_x(z, z_center):
    return 10.0 ** (np.asarray(z, dtype=float) + z_center)


def _family_row(a, boot_slopes, confidence_level, n_models):
    est, se, _, p = a.slope
    t = a.linear.t_quantile(confidence_level)
    lo_q, hi_q = (1 - confidence_level) / 2, (1 + confidence_level) / 2
    row = {"family": a.label, "n_models": n_models, "shape": a.verdict, "slope": est, "se": se,
           "ci_lower": est - t * se, "ci_upper": est + t * se, "p_value": p,
           "df": a.linear.df_resid, "tau2": a.linear.tau2, "p_gate": a.gate["p_value"],
           "p_quadratic": a.gate["p_quadratic"], "total_change": a.tost["total_change"],
           "p_flat": a.tost["p_value"],
           "boot_ci_lower": float(np.quantile(boot_slopes, lo_q)),
           "boot_ci_upper": float(np.quantile(boot_slopes, hi_q))}
    tl, lm = a.two_lines, a.lind_mehlum
    row.update({"breakpoint": np.nan, "slope_left": np.nan, "p_left": np.nan,
                "slope_right": np.nan, "p_right": np.nan, "p_u_shaped": np.nan,
                "p_inverted_u": np.nan})
    if tl is not None:
        row.update({"breakpoint": float(_to_x(tl.breakpoint, a.z_center)),
                    "slope_left": tl.slope_left, "p_left": tl.p_left,
                    "slope_right": tl.slope_right, "p_right": tl.p_right,
                    "p_u_shaped": tl.u_p_value(a.sign), "p_inverted_u": tl.u_p_value(-a.sign)})
    row.update({"p_lind_mehlum": lm["p_value"] if lm is not None else np.nan,
                "turning_point": np.nan, "tp_ci_lower": np.nan,
                "tp_ci_upper": np.nan})
    if lm is not None and a.verdict in ("u_shaped", "inverted_u"):
        row.update({"turning_point": float(_to_x(lm["turning_point"], a.z_center)),
                    "tp_ci_lower": float(_to_x(lm["tp_ci_lower"], a.z_center)),
                    "tp_ci_upper": float(_to_x(lm["tp_ci_upper"], a.z_center))})
    best = a.selection.sort_values("aicc").iloc[0]
    row["best_curve"] = best["curve"] if np.isfinite(best["aicc"]) else None
    return row


def _curve_rows(a, confidence_level):
    """Fitted curves with pointwise Knapp-Hartung bands on a grid (single-family fits only)."""
    grid = np.linspace(a.z.min(), a.z.max(), _CURVE_GRID)
    groups = np.zeros(len(grid), dtype=int)
    rows = []
    fits = {"linear": (a.linear, {}), "quadratic": (a.quadratic, {})}
    if a.two_lines is not None:
        fits["two_lines"] = (a.two_lines.fit, {"breakpoint": a.two_lines.breakpoint})
    for name, (fit, kw) in fits.items():
        if fit is None:
            continue
        X = design_matrix(name, grid, groups, **kw)
        mean = X @ fit.params
        se = np.sqrt(np.einsum("ij,jk,ik->i", X, fit.cov, X))
        t = fit.t_quantile(confidence_level)
        rows.append(pd.DataFrame({"family": a.label, "curve": name, "x": _to_x(grid, a.z_center),
                                  "fitted": mean, "ci_lower": mean - t * se,
                                  "ci_upper": mean + t * se}))
    return rows


def _model_rows(ms: ModelScores, confidence_level):
    m = ms.models.copy()
    zq = stats.norm.ppf(0.5 + confidence_level / 2)
    m["ci_lower"] = m["score"] - zq * m["se"]
    m["ci_upper"] = m["score"] + zq * m["se"]
    return m


@dataclass(frozen=True)
class TrendResult:
    """Shape verdict of a scaling curve, with per-family estimates and diagnostics.

    Attributes
    ----------
    shape : str
        Pooled verdict: 'positive', 'inverse', 'u_shaped', 'inverted_u', 'flat' or
        'inconclusive' (performance orientation: 'inverse' means larger models do worse).
    families : pandas.DataFrame
        One row per family: ``shape``, ``slope`` (score change per 10x of x), ``ci_lower``,
        ``ci_upper``, ``p_value``, ``tau2``, gate and U-test p-values, ``turning_point`` with
        ``tp_ci_lower``/``tp_ci_upper`` (x units), bootstrap interval of the slope, ...
    pooled : dict
        The same fields for all families together (family intercepts, common curve); equal to
        the single family's row when there is one family.
    models : pandas.DataFrame
        Per-model scores with standard errors and intervals.
    selection : pandas.DataFrame
        AICc of each candidate curve on the model-level likelihood, per family and pooled.
    curves : pandas.DataFrame
        Fitted curves with bands on a grid, for plotting.
    diagnostics : pandas.DataFrame
        Numbered notes: ``code, severity, message, details``.
    boot : dict
        Bootstrap replicate slopes per family (and 'pooled').
    meta : dict
        Options, seed, versions and data description.
    strength, generality : pandas.DataFrame or None
        Trend strength per family and pooled, and generality across families (filled by
        :mod:`scalingfit.evidence`).
    posterior : arviz.InferenceData or None
        Raw posterior of the Bayesian engine (not serialised).
    """

    shape: str
    families: pd.DataFrame
    pooled: dict
    models: pd.DataFrame
    selection: pd.DataFrame
    curves: pd.DataFrame
    diagnostics: pd.DataFrame
    boot: dict
    meta: dict
    strength: pd.DataFrame = None
    generality: pd.DataFrame = None
    posterior: object = field(default=None, compare=False, repr=False)
    analyses: dict = field(default=None, compare=False, repr=False)

    @classmethod
    def from_analyses(cls, ms: ModelScores, analyses: dict, boot: dict, meta: dict):
        """Assemble a result from the shape analyses and bootstrap slopes of :func:`fit_trend`."""
        cl = meta["confidence_level"]
        counts = ms.models.groupby("family", sort=False).size()
        rows = [_family_row(a, boot[label], cl,
                            int(counts[label]) if label in counts else len(ms.models))
                for label, a in analyses.items()]
        fam_rows = [r for r in rows if r["family"] != "pooled"]
        pooled = next((r for r in rows if r["family"] == "pooled"), dict(fam_rows[0]))
        curves = pd.concat([df for label, a in analyses.items() if label != "pooled"
                            for df in _curve_rows(a, cl)], ignore_index=True)
        selection = pd.concat([a.selection for a in analyses.values()], ignore_index=True)
        result = cls(shape=pooled["shape"], families=pd.DataFrame(fam_rows), pooled=pooled,
                     models=_model_rows(ms, cl), selection=selection, curves=curves,
                     diagnostics=pd.DataFrame(columns=NOTE_COLUMNS),
                     boot={k: np.asarray(v) for k, v in boot.items()}, meta=meta,
                     analyses=analyses)
        return result.with_diagnostics(core_notes(result, ms))

    def replace(self, **changes) -> "TrendResult":
        """A copy with some fields replaced (results are immutable)."""
        return dataclasses.replace(self, **changes)

    def with_diagnostics(self, notes: pd.DataFrame) -> "TrendResult":
        """A copy with ``notes`` appended to the diagnostics (and a warning if any is severe)."""
        notes = notes if isinstance(notes, pd.DataFrame) else pd.DataFrame(notes)
        diag = pd.concat([self.diagnostics, notes], ignore_index=True) if len(
            self.diagnostics) else notes.reset_index(drop=True)
        warn_notes(notes)
        return self.replace(diagnostics=diag)

    # ------------------------------------------------------------------ rendering
    def __repr__(self) -> str:
        return (f"<TrendResult shape={self.shape!r} families={len(self.families)} "
                f"models={self.meta.get('n_models')} method={self.meta.get('method')!r}>")

    def summary(self) -> pd.DataFrame:
        """Tidy per-family table (plus a 'pooled' row when there are several families).

        ``best_curve`` is the curve form preferred by model selection (AICc on the model-level
        likelihood; grouped LOO for the Bayesian engine with ``compare=True``); the full table
        is :attr:`selection`.
        """
        cols = ["family", "n_models", "shape", "slope", "ci_lower", "ci_upper", "p_value",
                "p_gate", "total_change", "turning_point", "tp_ci_lower", "tp_ci_upper",
                "best_curve"]
        cols += [c for c in self.families.columns if c.startswith("p_") and c not in cols
                 and c in [f"p_{name}" for name in CLAIMS]
                 and self.meta.get("method") == "bayes"]
        rows = self.families[[c for c in cols if c in self.families.columns]]
        if len(self.families) > 1:
            pooled = pd.DataFrame([{c: self.pooled.get(c) for c in rows.columns}])
            rows = pd.concat([rows, pooled], ignore_index=True)
        return rows.reset_index(drop=True)

    def to_dict(self) -> dict:
        """Plain JSON types (non-finite numbers become None); inverse of :meth:`from_dict`."""
        lo, hi = (1 - self.meta["confidence_level"]) / 2, (1 + self.meta["confidence_level"]) / 2
        boot = {k: {"n": int(len(v)), "mean": float(np.mean(v)), "sd": float(np.std(v)),
                    "q_lower": float(np.quantile(v, lo)), "q_upper": float(np.quantile(v, hi))}
                if isinstance(v, np.ndarray) else v for k, v in self.boot.items()}
        return jsonable({"shape": self.shape, "families": self.families, "pooled": self.pooled,
                         "models": self.models, "selection": self.selection,
                         "curves": self.curves, "diagnostics": self.diagnostics,
                         "boot": boot, "meta": self.meta,
                         "strength": self.strength if self.strength is not None else [],
                         "generality": self.generality if self.generality is not None else []})

    @classmethod
    def from_dict(cls, d: dict) -> "TrendResult":
        """Rebuild a result (without raw fits or posterior) from :meth:`to_dict` output."""
        frame = lambda key: pd.DataFrame.from_records(d[key]) if d[key] else pd.DataFrame()
        diag = frame("diagnostics")
        if diag.empty:
            diag = pd.DataFrame(columns=NOTE_COLUMNS)
        return cls(shape=d["shape"], families=frame("families"), pooled=dict(d["pooled"]),
                   models=frame("models"), selection=frame("selection"),
                   curves=frame("curves"), diagnostics=diag, boot=dict(d["boot"]),
                   meta=dict(d["meta"]),
                   strength=frame("strength") if d.get("strength") else None,
                   generality=frame("generality") if d.get("generality") else None)

    def to_json(self, path=None, **kwargs) -> str:
        """JSON text of :meth:`to_dict`; written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=kwargs.pop("indent", 2), **kwargs)
        if path is not None:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        return text

    def report(self, format: str = "text", **kwargs) -> str:
        """Human-readable report: ``'text'``, ``'markdown'`` or ``'html'``."""
        from .report import render      # the renderer sits above results (sanctioned reach)

        return render(self, format=format, **kwargs)

    def _repr_html_(self) -> str:
        return self.summary().to_html(index=False, float_format=lambda v: f"{v:.4g}")

    def plot(self, ax=None, **kwargs):
        """Score against scale per family with the fitted curve and band; returns the Axes."""
        from .plotting import plot_trend  # the renderer sits above results (sanctioned reach)

        return plot_trend(self, ax=ax, **kwargs)
