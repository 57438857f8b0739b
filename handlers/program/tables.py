"""The program page's tables: one model shown as HTML and downloaded as CSV.

A CSV opens cleanly in a spreadsheet: UTF-8 with a byte-order mark (so Excel reads it as
UTF-8), one header row, ISO dates, and no formulas: a cell starting with `=`, `+`, `-`,
`@`, a tab or a carriage return is written with a leading apostrophe, so a title someone
typed is never run as a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Person:
    """A person in a table: shown by name, linked to their page, written by name in CSV."""

    user_id: str
    name: str


Cell = str | int | float | date | datetime | Person | None


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    numeric: bool = False


@dataclass(frozen=True, slots=True)
class Table:
    """A titled table; `name` is how its CSV is asked for."""

    name: str
    title: str
    columns: tuple[Column, ...]
    rows: Sequence[tuple[Cell, ...]]
    empty: str = "Nothing in this period."


def text(cell: Cell) -> str:
    """A cell as plain text: ISO dates, whole numbers as digits, shares to one decimal."""
    if cell is None:
        return ""
    if isinstance(cell, Person):
        return cell.name
    if isinstance(cell, datetime | date):
        return cell.isoformat()
    if isinstance(cell, float):
        return f"{cell:.1f}"
    return str(cell)


def neutralised(value: str) -> str:
    """A value a spreadsheet will not read as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def to_csv(table: Table) -> bytes:
    """The table as CSV: UTF-8 with a BOM, a header row, every cell neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralised(c.label) for c in table.columns])
    for row in table.rows:
        writer.writerow([neutralised(text(cell)) for cell in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
