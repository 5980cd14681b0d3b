"""How ``kartu`` and ``kartu up`` print: JSON for scripts (``--json``), plain aligned text for
people; ``starter.cli.console`` draws the same documents with ``rich`` on a terminal.

JSON is built from the same pydantic models the API returns (``model_dump(mode="json")``), so
amounts stay decimal strings and times ISO 8601; nothing here knows a payment's fields. A human
answer is a document: a list of blocks (``Fields``, ``Table``, ``Text``), drawn as plain text
here (piped output, logs: no colour, no cursor moves) or by ``rich``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, TextIO

from pydantic import BaseModel


def plain(value: Any) -> Any:
    """Models, enums, decimals, times and containers as JSON-ready values."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def print_json(value: Any, out: TextIO | None = None) -> None:
    stream = out or sys.stdout
    stream.write(json.dumps(plain(value), indent=2, ensure_ascii=False) + "\n")
    stream.flush()


def print_json_line(value: Any, out: TextIO | None = None) -> None:
    """One compact object per line: events a script reads as they come (``kartu up --json``)."""
    stream = out or sys.stdout
    stream.write(json.dumps(plain(value), ensure_ascii=False, separators=(",", ":")) + "\n")
    stream.flush()


def cell(value: Any) -> str:
    value = plain(value)
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value) or "-"
    return str(value)


def table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows under upper-case headers, columns padded to their widest cell."""
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    headers = [c.upper().replace("_", " ") for c in columns]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = [_line(headers, widths)] + [_line(r, widths) for r in cells]
    return "\n".join(lines)


def _line(values: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()


def fields(pairs: Iterable[tuple[str, Any]]) -> str:
    """``name: value`` lines, names aligned; None values are left out."""
    shown = [(k, cell(v)) for k, v in pairs if v is not None]
    if not shown:
        return ""
    width = max(len(k) for k, _ in shown)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in shown)


def emit(text: str, out: TextIO | None = None) -> None:
    stream = out or sys.stdout
    stream.write(text.rstrip("\n") + "\n")
    stream.flush()


# --- documents --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fields:
    """``name  value`` lines, names aligned; None values are left out."""

    pairs: Sequence[tuple[str, Any]]
    title: str | None = None


@dataclass(frozen=True)
class Table:
    """Rows under upper-case headers."""

    rows: Sequence[Mapping[str, Any]]
    columns: Sequence[str]
    title: str | None = None


@dataclass(frozen=True)
class Text:
    text: str


Block = Fields | Table | Text


def plain_text(doc: Sequence[Block]) -> str:
    """The document as plain text: blocks apart by a blank line, a title on its own line."""
    parts = []
    for block in doc:
        if isinstance(block, Text):
            parts.append(block.text)
            continue
        if isinstance(block, Fields):
            body = fields(block.pairs)
        else:
            body = table(block.rows, block.columns)
        parts.append(f"{block.title}\n{body}" if block.title else body)
    return "\n\n".join(parts)
