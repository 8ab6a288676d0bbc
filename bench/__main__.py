"""Run the benchmarks and print one table: `python -m bench [NAME ...]` (`make bench`).

The convention, for anyone adding a benchmark:

- A benchmark is a module `bench/<name>.py` (names starting with `_` are skipped) that defines
  `run() -> list[dict[str, object]]`. Every such module is found and run, in name order; give
  names on the command line to run only those (`python -m bench ingest`).
- Each dict is one row of the table. Usual keys: `case` (what was measured), `value` (the
  figure), `unit`, and, where the issue sets one, `target` (e.g. `"< 50"`) and `met` (bool).
  Any other key (`backend`, `p99_ms`, ...) becomes a column of its own; columns appear in the
  order keys are first seen, after a `bench` column holding the module name.
- Figures are printed, never asserted: a missed target shows as `met = no` and the exit status
  stays 0. A benchmark that raises is reported as a row and makes the exit status 1.
- A module may also be run alone (`python -m bench.<name>`); `print_table` is here for that.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

Row = dict[str, object]
HERE = Path(__file__).resolve().parent


def say(text: str, *, err: bool = False) -> None:
    """Benchmark output: the table on stdout, progress on stderr."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()


def discover() -> list[str]:
    """Names of the benchmark modules in bench/, in name order."""
    return sorted(
        info.name
        for info in pkgutil.iter_modules([str(HERE)])
        if not info.name.startswith("_") and not info.ispkg
    )


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def print_table(rows: Sequence[Row]) -> None:
    """Rows as an aligned text table, columns in the order their keys first appear."""
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    numeric = [
        all(
            isinstance(row.get(c), int | float) and not isinstance(row.get(c), bool)
            for row in rows
            if c in row
        )
        for c in columns
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    say(line(columns))
    say("  ".join("-" * w for w in widths))
    for row_cells in cells:
        say(line(row_cells))


def run_all(names: Sequence[str]) -> tuple[list[Row], bool]:
    """Every named benchmark's rows, each tagged with its module; False if one failed."""
    rows: list[Row] = []
    ok = True
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        run: Callable[[], list[Row]] | None = getattr(module, "run", None)
        if run is None:
            continue
        say(f"running bench.{name} ...", err=True)
        started = time.perf_counter()
        try:
            produced = run()
        except Exception as exc:
            traceback.print_exc()
            rows.append({"bench": name, "case": "FAILED", "value": f"{type(exc).__name__}: {exc}"})
            ok = False
            continue
        rows.extend({"bench": name, **row} for row in produced)
        say(f"  done in {time.perf_counter() - started:.1f} s", err=True)
    return rows, ok


def main(argv: Sequence[str]) -> int:
    available = discover()
    unknown = [name for name in argv if name not in available]
    if unknown:
        say(f"no such benchmark: {', '.join(unknown)} (have: {', '.join(available)})")
        return 2
    rows, ok = run_all(list(argv) or available)
    print_table(rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
