"""Where ``kartu``'s output goes and how it looks: ``--json`` prints the answer as JSON; otherwise
its document (``views``) is drawn with ``rich`` when stdout is a terminal (tables, colours) and
as plain aligned text when it is not (a pipe, a file, CI logs: no colour codes, no ``\\r``).

Progress (``kartu demo``) goes to stderr: a live ``rich`` bar on a terminal, one plain line per
finished step otherwise, so stdout stays the answer alone.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any

from starter import output
from starter.output import Block, Fields, Table, Text

# Whole-cell words coloured on a terminal: good ends, bad ends, waiting.
_GOOD = {"PAID", "CAPTURED", "AUTHORIZED", "REGISTERED", "REFUNDED", "UNBOUND", "VOIDED"}
_GOOD |= {"ACTIVE", "ok", "found", "captured", "voided", "resolved"}
_BAD = {"DECLINED", "FAILED", "ERROR", "TIMEOUT", "EXPIRED", "DISABLED", "refused", "no"}
_WAIT = {"PENDING", "CHALLENGE", "NEEDS_ATTENTION", "PENDING_PROVIDER", "unknown"}
_STYLES = {**dict.fromkeys(_GOOD, "green"), **dict.fromkeys(_BAD, "red")}
_STYLES |= dict.fromkeys(_WAIT, "yellow")


def _console(stream: IO[str]) -> Any:
    from rich.console import Console

    return Console(file=stream, highlight=False, soft_wrap=False)


def fancy(stream: IO[str]) -> bool:
    """Draw with rich: ``stream`` is an interactive terminal (rich's own test, which also
    honours ``TERM=dumb``, ``FORCE_COLOR`` and ``TTY_COMPATIBLE``)."""
    console = _console(stream)
    return bool(console.is_terminal and not console.is_dumb_terminal)


def show(json_output: bool, value: Any, doc: Callable[[], Sequence[Block]]) -> None:
    """The answer: ``value`` as JSON, or its document for people."""
    if json_output:
        output.print_json(value)
    else:
        print_doc(doc())


def print_doc(doc: Sequence[Block], stream: IO[str] | None = None) -> None:
    out = stream or sys.stdout
    if fancy(out):
        draw(doc, _console(out))
    else:
        output.emit(output.plain_text(doc), out)


def draw(doc: Sequence[Block], console: Any) -> None:
    """The document with rich: fields as a two-column grid, tables with a ruled header."""
    from rich import box
    from rich.table import Table as RichTable

    for index, block in enumerate(doc):
        if index:
            console.print()
        if isinstance(block, Text):
            console.print(block.text, markup=False)
            continue
        if block.title:
            console.print(block.title, style="bold", markup=False)
        if isinstance(block, Fields):
            grid = RichTable.grid(padding=(0, 2))
            grid.add_column(style="bold")
            grid.add_column()
            for name, value in block.pairs:
                if value is not None:
                    grid.add_row(name, _cell(value))
            console.print(grid)
        elif isinstance(block, Table):
            table = RichTable(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
            for column in block.columns:
                table.add_column(column.upper().replace("_", " "), header_style="bold")
            for row in block.rows:
                table.add_row(*(_cell(row.get(c)) for c in block.columns))
            console.print(table)


def _cell(value: Any) -> Any:
    from rich.text import Text as RichText

    text = output.cell(value)
    # A Text, never markup: a value (a reason, a URL) with "[...]" is printed as it is.
    return RichText(text, style=_STYLES.get(text, ""))


class Progress:
    """Steps of a long command, on stderr: ``started(name)`` / ``finished(name, line, ok)``."""

    def __init__(self, total: int, *, live: Any = None, stream: IO[str] | None = None) -> None:
        self._total, self._live, self._stream = total, live, stream
        self._done = 0
        self._running: list[str] = []
        self._task: Any = None
        if live is not None:
            self._task = live.add_task("starting", total=total)

    def started(self, name: str) -> None:
        self._running.append(name)
        self._describe()

    def finished(self, name: str, line: str, ok: bool) -> None:
        if name in self._running:
            self._running.remove(name)
        self._done += 1
        if self._live is not None:
            mark = "[green]✓[/]" if ok else "[red]✗[/]"
            self._live.console.print(f"{mark} {_escape(line)}")
            self._live.advance(self._task)
            self._describe()
        elif self._stream is not None:
            self._stream.write(f"[{self._done}/{self._total}] {line}\n")
            self._stream.flush()

    def _describe(self) -> None:
        if self._live is not None:
            running = ", ".join(self._running) or "finishing"
            self._live.update(self._task, description=running)


def _escape(text: str) -> str:
    from rich.markup import escape

    return str(escape(text))


@contextmanager
def progress(total: int, *, plain_lines: bool, stream: IO[str] | None = None) -> Iterator[Progress]:
    """A live bar when ``stream`` (stderr) is a terminal; else one line per finished step if
    ``plain_lines``, else nothing."""
    err = stream or sys.stderr
    if not fancy(err):
        yield Progress(total, stream=err if plain_lines else None)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.progress import Progress as RichProgress

    columns = (
        SpinnerColumn(),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    with RichProgress(*columns, console=_console(err), transient=True) as live:
        yield Progress(total, live=live)
