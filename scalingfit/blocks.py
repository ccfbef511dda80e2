"""The format-neutral pieces a document is made of, built by :mod:`scalingfit.documents` and
:mod:`scalingfit.repro`, written by :mod:`scalingfit.writers`.

A document is a list of blocks, each a tuple whose first item names its kind:

``("h", level, text, id)``, ``("p", parts[, css class])``, ``("facts", [(label, parts)])``,
``("verdict", shape, parts)``, ``("lights", [(key, title, status, reason)], prefix)``,
``("fig", name, png, alt, caption)``, ``("table", Table)``, ``("notes", [(code, severity,
message)])``, ``("code", text, language)``, ``("open", id, key, status)`` and ``("close",)``.
``parts`` mix text and :class:`Num`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .wording import fmt, fmt_p, fmt_size

__all__ = ["Num", "Table", "make_table", "cell_text", "STATUS", "NUMERIC_KINDS"]

#: status -> (symbol, word)
STATUS = {"pass": ("\u25cf", "pass"), "warn": ("\u25cf", "caution"),
          "fail": ("\u25cf", "fails"), "na": ("\u25cb", "not assessed")}
#: column kinds shown right-aligned
NUMERIC_KINDS = ("num", "num4", "p", "size")


@dataclass
class Num:
    """A number in running text; ``field`` names where it comes from (e.g. 'pooled.slope')."""

    value: object
    field: str
    kind: str = "num"

    def text(self) -> str:
        return {"p": fmt_p, "size": fmt_size}.get(self.kind, fmt)(self.value)


@dataclass
class Table:
    """A table: ``columns`` is a list of (key, header, kind); ``source`` names the result
    attribute the rows come from and ``key`` the column that identifies a row."""

    id: str
    caption: str
    columns: list
    rows: list
    source: str = ""
    key: str | None = None


def make_table(id, caption, df, columns, source="", key=None) -> Table:
    """A :class:`Table` of ``df`` with the ``columns`` it has."""
    cols = [c for c in columns if c[0] in df.columns]
    return Table(id, caption, cols, df.to_dict(orient="records"), source, key)


def cell_text(v, kind) -> str:
    """The shown text of one table cell of ``kind`` ('p', 'size', 'num4', 'num', 'str')."""
    if kind == "p":
        return fmt_p(v)
    if kind == "size":
        return fmt_size(v)
    return fmt(v, 4 if kind == "num4" else 3)
