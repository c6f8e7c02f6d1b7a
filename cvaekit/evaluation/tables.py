"""Metric tables: on the terminal (rich) and on disk (CSV and JSON), for `evaluate`,
`fit-prior` and `sweep` alike."""

from __future__ import annotations

import csv
import io
import json
import os
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
    """`stem`.csv (one row per row) and `stem`.json (the rows, the columns and `extra`), each
    written whole or not at all (a temporary file renamed over the old one)."""
    csv_path, json_path = stem.with_suffix(".csv"), stem.with_suffix(".json")
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=keys + columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    _write_whole(csv_path, text.getvalue())
    _write_whole(json_path, json.dumps({**(extra or {}), "keys": keys, "metrics": columns, "rows": rows}, indent=2))
    return [csv_path, json_path]


def _write_whole(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_table(stem: Path, keys: list[str]) -> tuple[list[dict[str, Any]], list[str], dict[str, Any]] | None:
    """The rows, metric columns and other fields of a table `write_table` wrote: from
    `stem`.json, else from `stem`.csv (numbers read back as numbers, the columns not in
    `keys` taken for metrics); None when neither
    exists. A file that cannot be read as a table raises ValueError."""
    json_path, csv_path = stem.with_suffix(".json"), stem.with_suffix(".csv")
    if json_path.is_file():
        try:
            table = json.loads(json_path.read_text())
            rows, columns = list(table["rows"]), list(table["metrics"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"'{json_path}' is not a table cvaekit wrote ({exc})") from None
        if not all(isinstance(r, dict) for r in rows):
            raise ValueError(f"'{json_path}' is not a table cvaekit wrote (a row is not an object)")
        return rows, columns, {k: v for k, v in table.items() if k not in ("rows", "metrics", "keys")}
    if csv_path.is_file():
        try:
            with csv_path.open(newline="") as f:
                reader = csv.DictReader(f)
                rows = [{k: _value(v) for k, v in row.items() if k is not None} for row in reader]
                fields = [f for f in reader.fieldnames or [] if f not in keys]
        except (OSError, csv.Error, UnicodeDecodeError) as exc:
            raise ValueError(f"'{csv_path}' is not a table cvaekit wrote ({exc})") from None
        return rows, fields, {}
    return None


def _value(text: str | None) -> Any:
    if text is None or text == "":
        return None if text is None else ""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def merge_rows(old: list[dict[str, Any]], new: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    """The rows of both, one per value of `keys`: where a new row has the same keys as an old
    one, its values replace the old row's and the old row's other values stay. Sorted by
    the keys."""
    merged: dict[tuple, dict[str, Any]] = {}
    for row in [*old, *new]:
        key = tuple(row.get(k) for k in keys)
        merged[key] = {**merged.get(key, {}), **row}
    return [merged[k] for k in sorted(merged, key=lambda key: [(v is None, str(type(v)), v) for v in key])]
