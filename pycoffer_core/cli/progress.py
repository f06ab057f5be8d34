"""Progress on stderr, for work that can take more than a second.

Shown only when stderr is a terminal and ``--quiet`` was not given, so
pipes, logs and scripts get nothing but the data and the errors. Bars are
transient: when the work is done the terminal is as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ..memberio import MemberReader
from .state import current

#: Width given to the name of the item being worked on.
_LABEL_WIDTH = 32


def _console() -> Console:
    return Console(stderr=True)


def enabled() -> bool:
    """True if progress should be drawn in this run."""
    return not current().quiet and _console().is_terminal


def _label(text: str) -> str:
    if len(text) > _LABEL_WIDTH:
        text = "…" + text[-(_LABEL_WIDTH - 1) :]
    return text.ljust(_LABEL_WIDTH)


class Bar:
    """A byte counter with a current label; a no-op when progress is off."""

    def __init__(self, progress: Progress | None, task: int | None) -> None:
        self._progress = progress
        self._task = task

    def advance(self, count: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, count)

    def label(self, text: str) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=_label(text))


@contextmanager
def bytes_bar(total: int | None, action: str) -> Iterator[Bar]:
    """A bar counting ``total`` bytes (``None``: unknown, a spinner and a count)."""
    if not enabled():
        yield Bar(None, None)
        return
    progress = Progress(
        SpinnerColumn(),
        TextColumn(action),
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=_console(),
        transient=True,
    )
    with progress:
        yield Bar(progress, progress.add_task(_label(""), total=total))


@contextmanager
def spinner(action: str) -> Iterator[None]:
    """A spinner and the time elapsed, for work that reports no progress of its own."""
    if not enabled():
        yield
        return
    progress = Progress(
        SpinnerColumn(), TextColumn(action), TimeElapsedColumn(), console=_console(), transient=True
    )
    with progress:
        progress.add_task(action, total=None)
        yield


class CountingReader:
    """A binary reader that advances ``bar`` by every byte read through it."""

    def __init__(self, raw: BinaryIO, bar: Bar) -> None:
        self._raw = raw
        self._bar = bar

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._bar.advance(len(data))
        return data


class CountingMemberReader(CountingReader):
    """A :class:`CountingReader` on a member reader, that also hands out its
    chunks as they are opened (``MemberReader.iter_chunks``), counted, so
    ``extract`` reads a large member ahead, as the API's does."""

    def __init__(self, member: MemberReader, bar: Bar) -> None:
        super().__init__(member, bar)  # type: ignore[arg-type]
        self._member = member

    def iter_chunks(self, *, read_ahead: bool = False) -> Iterator[bytes | memoryview]:
        for chunk in self._member.iter_chunks(read_ahead=read_ahead):
            self._bar.advance(len(chunk))
            yield chunk
