"""CSV cells that a spreadsheet cannot run: OWASP's defence against CSV (formula) injection."""

from __future__ import annotations

# A cell starting with one of these is read as a formula by Excel, LibreOffice or Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """A text cell that starts like a formula gets a leading `'`, so it stays text; numbers pass."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(values: list[object]) -> list[object]:
    """Every cell of a row through `safe_cell`; use it for every row pingjia writes to a CSV."""
    return [safe_cell(v) for v in values]
