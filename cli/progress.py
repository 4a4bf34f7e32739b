"""Progress bars for the long actions of a rollout (the backfill): the library reports
progress events (:class:`rollout.phase.ProgressEvent`) to a callback; this draws them with Rich.

Used by ``invoke rollout`` and ``invoke demo`` when stdout is a terminal; no Invoke here, so
anything that drives the engine can pass it as ``on_progress``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from rollout.phase import OnProgress, ProgressEvent


class ProgressBars:
    """One bar per reporting action, on screen from its first event to its last, and left
    there afterwards as a record of how it went."""

    def __init__(self, console: Console | None = None) -> None:
        self._console = console  # None: Rich's shared console, on stdout
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def __call__(self, event: ProgressEvent) -> None:
        progress = self._progress or self._start()
        task = self._tasks.get(event.action_id)
        if task is None:
            task = progress.add_task(event.action_id.rsplit(".", 1)[-1], unit=event.unit,
                                     rate=0.0, total=event.total or 1)  # 0 would never fill
            self._tasks[event.action_id] = task
        progress.update(task, completed=event.done, rate=event.rows_per_second)
        if event.finished:
            del self._tasks[event.action_id]
            if not self._tasks:
                self.close()

    def _start(self) -> Progress:
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,} {task.fields[unit]}"),
            TextColumn("{task.fields[rate]:,.0f} rows/s"), TimeRemainingColumn(),
            console=self._console, transient=False)
        self._progress.start()
        return self._progress

    def close(self) -> None:
        """Stop drawing (the bars stay on screen); a later event starts a new display."""
        if self._progress is not None:
            self._progress.stop()
            self._progress, self._tasks = None, {}


@contextlib.contextmanager
def progress_bars(enabled: bool, console: Console | None = None) -> Iterator[OnProgress | None]:
    """The callback to hand the engine: bars when ``enabled``, else None (nothing drawn);
    whatever is still drawing stops when the block ends, even on an error."""
    if not enabled:
        yield None
        return
    bars = ProgressBars(console)
    try:
        yield bars
    finally:
        bars.close()
