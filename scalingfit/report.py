"""Reports of a fitted result: the facade over the report rooms.

``result.report(format)`` lands here. Plain text comes from :mod:`scalingfit.writers`; HTML and
Markdown are the criterion report: :func:`scalingfit.assessment.assess` computes it (claim
check and coverage refits included), :mod:`scalingfit.documents` builds its blocks and
:mod:`scalingfit.writers` writes them. Multi-task reports are :mod:`scalingfit.multitask`.
"""

from __future__ import annotations

from .assessment import assess
from .documents import render_assessment
from .engines import engine_view
from .exceptions import OptionError
from .wording import slope_words
from .writers import render_text

__all__ = ["render", "render_document", "verdict_sentence", "slope_words"]

FORMATS = ("text", "markdown", "html")


def verdict_sentence(result) -> str:
    """One sentence: the pooled verdict with its evidence.

    Bootstrap results quote p-values and confidence intervals; Bayesian results
    (``meta['method'] == 'bayes'``) quote posterior probabilities and credible intervals, since
    their ``p_*`` columns are posterior probabilities, not p-values.
    """
    return engine_view(result).verdict_sentence(result)


def render(result, format: str = "text", **kwargs) -> str:
    """Render ``result`` as ``'text'``, ``'markdown'`` or ``'html'``.

    Raises
    ------
    OptionError
        Another format.
    """
    if format == "text":
        return render_text(result)
    if format in ("markdown", "html"):
        return render_document(result, format=format, **kwargs)
    raise OptionError(f"format must be 'text', 'markdown' or 'html'; got {format!r}")


def render_document(result, format="html", claim=None, out=None, *, data=None, source=None,
                    options=None, check=None, title=None, plots=True) -> str:
    """Criterion report of one fitted task, as self-contained HTML or Markdown.

    Parameters
    ----------
    result : TrendResult
    format : {'html', 'markdown'}
        HTML embeds the plots as base64 PNG with inline CSS (no network requests); Markdown
        writes the PNGs into ``<out stem>_files/`` beside ``out`` (or inlines them as data URIs
        when ``out`` is None).
    claim : {'inverse', 'positive', 'u_shaped', 'inverted_u', 'flat'}, optional
        The shape the submission claims; default: the verdict, when it is a claimable shape.
    out : path, optional
        File to write.
    data : pandas.DataFrame, optional
        The results table the result was fitted on. Needed to refit per ``subtask`` /
        ``variant`` level (coverage criterion) and for the checks of ``check_claim``; without
        it the noise criterion reads only the significance check off the fit, and says so.
    source : str, optional
        Path of the results file, quoted in the reproducibility section.
    options : dict, optional
        Loading options used (``task``, ``metric``, ``format``, ``chance``) for the
        reproducing command.
    check : ClaimCheck, optional
        A precomputed :func:`scalingfit.claims.check_claim` result (else it is run on
        ``data``).
    title : str, optional
    plots : bool

    Returns
    -------
    str
        The document.

    Raises
    ------
    DataValidationError
        ``claim`` is not a claimable shape.
    OptionError
        ``format`` is not 'html' or 'markdown'.
    """
    a = assess(result, claim, data=data, check=check)
    return render_assessment(a, format, out, source=source, options=options, title=title,
                             plots=plots)
