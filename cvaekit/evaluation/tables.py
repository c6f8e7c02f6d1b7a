"""Metric tables: on the terminal (rich) and on disk (CSV and JSON), for `evaluate`,
`fit-prior` and `sweep` alike."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from rich.table import Table


def metrics_table(rows: list[dict[str, Any]], keys: list[str], columns: list[str], title: str) -> Table:
    """A rich table: the `keys` columns (epoch, or a sweep's settings) then the metrics."""
    table = Table(title=title)
    for k in keys:
        table.add_column(k, justify="right" if k == "epoch" else "left")
    for c in columns:
        table.add_column(c, justify="right")
    for row in rows:
        table.add_row(*(str(row.get(k, "")) for k in keys),
                      *(_number(row.get(c)) for c in columns))
    return table


def _number(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if abs(value) < 1 else f"{value:.4g}" if abs(value) >= 1e4 else f"{value:.2f}"


def write_table(rows: list[dict[str, Any]], keys: list[str], columns: list[str], stem: Path,
                extra: dict[str, Any] | None = None) -> list[Path]:
    """`stem`.csv (one row per row) and `stem`.json (the rows, the columns and `extra`)."""
    csv_path, json_path = stem.with_suffix(".csv"), stem.with_suffix(".json")
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys + columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    json_path.write_text(json.dumps({**(extra or {}), "keys": keys, "metrics": columns, "rows": rows}, indent=2))
    return [csv_path, json_path]
