"""CSV in and out: stock counts read from a spreadsheet's export (comma or semicolon), and
lists written so a spreadsheet opens them safely."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

MAX_ROWS = 10_000
MAX_SKU = 128
MAX_ON_HAND = 10_000_000


@dataclass
class StockCounts:
    """What a stock CSV says: one count per SKU, or the problems that stop it being applied."""

    rows: list[tuple[str, int]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    delimiter: str = ","


def _delimiter(header: str) -> str:
    # Spreadsheets in much of Europe write semicolons, since the comma is their decimal mark.
    return ";" if header.count(";") > header.count(",") else ","


def parse_stock(text: str) -> StockCounts:
    """Counts from CSV text with a header naming the columns `sku` and `on_hand` (any case,
    any order, other columns ignored), separated by commas or semicolons."""
    text = text.removeprefix("\ufeff")  # the byte-order mark some spreadsheets write first
    first = text.split("\n", 1)[0]
    found = StockCounts(delimiter=_delimiter(first))
    reader = csv.reader(io.StringIO(text), delimiter=found.delimiter)
    header = [name.strip().lower() for name in next(reader, [])]
    if "sku" not in header or "on_hand" not in header:
        found.problems.append("the first line must name the columns sku and on_hand")
        return found
    sku_at, count_at = header.index("sku"), header.index("on_hand")
    seen: set[str] = set()
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(found.rows) >= MAX_ROWS:
            found.problems.append(f"more than {MAX_ROWS} rows; split the file")
            break
        sku = row[sku_at].strip() if sku_at < len(row) else ""
        raw = row[count_at].strip() if count_at < len(row) else ""
        if not sku or len(sku) > MAX_SKU:
            found.problems.append(f"line {number}: needs a SKU of 1 to {MAX_SKU} characters")
            continue
        try:
            on_hand = int(raw)
        except ValueError:
            found.problems.append(f"line {number}: on_hand {raw!r} is not a whole number")
            continue
        if not 0 <= on_hand <= MAX_ON_HAND:
            found.problems.append(f"line {number}: on_hand must be 0 to {MAX_ON_HAND}")
            continue
        if sku in seen:
            found.problems.append(f"line {number}: SKU {sku!r} appears more than once")
            continue
        seen.add(sku)
        found.rows.append((sku, on_hand))
    if not found.rows and not found.problems:
        found.problems.append("the file has no rows below its header")
    return found


def safe_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula is prefixed with `'`,
    so a buyer's name such as `=HYPERLINK(...)` is never run on an operator's machine."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return str(value)  # a number or a time: never read as a formula
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def write(header: Sequence[str], rows: Iterable[Sequence[object]]) -> Iterable[str]:
    """CSV text, a line at a time, every cell made safe."""
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\r\n")
    out.writerow(header)
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        out.writerow([safe_cell(cell) for cell in row])
        yield buffer.getvalue()
