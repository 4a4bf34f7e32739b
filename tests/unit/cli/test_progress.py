"""The CLI's progress bars draw the library's events; nothing draws when they are off."""

from __future__ import annotations

import io

from rich.console import Console

from cli.progress import ProgressBars, progress_bars
from rollout.phase import ProgressEvent


def _console(buf: io.StringIO) -> Console:
    return Console(file=buf, width=120, force_terminal=False, color_system=None)


def test_bars_show_the_last_event_and_stop_when_the_action_finishes() -> None:
    buf = io.StringIO()
    bars = ProgressBars(_console(buf))
    bars(ProgressEvent("dual_write.backfill", 0, 2460, 0.0))
    bars(ProgressEvent("dual_write.backfill", 1200, 2460, 5000.0))
    bars(ProgressEvent("dual_write.backfill", 2460, 2460, 5400.0, finished=True))
    out = buf.getvalue()
    assert "backfill" in out and "2,460/2,460 ids" in out and "5,400 rows/s" in out
    bars.close()  # already stopped: a no-op
    assert buf.getvalue() == out


def test_nothing_to_do_draws_without_dividing_by_zero() -> None:
    buf = io.StringIO()
    with progress_bars(True, _console(buf)) as on_progress:
        assert on_progress is not None
        on_progress(ProgressEvent("dual_write.backfill", 0, 0, 0.0, finished=True))
    assert "backfill" in buf.getvalue()


def test_disabled_is_no_callback() -> None:
    with progress_bars(False) as on_progress:
        assert on_progress is None
