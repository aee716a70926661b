"""CSV for spreadsheets: the exports people open in Excel or WPS (reports, the audit log).

The text starts with a byte order mark, so that a spreadsheet opens Chinese names as UTF-8, and a
cell that a spreadsheet would run as a formula (``=HYPERLINK(…)``, ``+``, ``-``, ``@``, a tab or a
carriage return first) is quoted with an apostrophe. A cell that already starts with an apostrophe
is quoted too, since a spreadsheet would swallow that one: every cell reads as written, and
``unquoted`` gives back exactly what was exported.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

_QUOTE = "'"
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", _QUOTE)


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A header line, then a line per row (``None`` as an empty cell), every cell safe to open."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return out.getvalue()


def read_csv(text: str) -> list[dict[str, str]]:
    """The rows of ``csv_text``'s text by column, every cell as it was before it was quoted."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    return [{column: unquoted(value) for column, value in row.items()} for row in reader]


def unquoted(value: str) -> str:
    return value[1:] if value.startswith(_QUOTE) else value


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return _QUOTE + value
    return value
