"""What ``dlq.list`` and ``dlq.show`` print stays bounded whatever is stored: long texts are
cut in tables and lines (saying how much is left and where to read it), and come whole in
``--format json``. Rendering is linear in what is shown: a 64 KB reason used to take Rich's
highlighter 23 s, so sizes are asserted here, not times."""

from __future__ import annotations

import io
import json
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from rich.console import Console

from cli import dlq_render
from ledger.deadletter import AuditEntry, DeadLetter, DeadLetterDetail, DeadLetterPage
from ledger.runs import RunRecord

T = TypeVar("T")
NOW = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
SIZES = [64 * 1024, 1024 * 1024]  # 64 KB first: the old code fails it in seconds, not hours
BOUND = 20_000  # characters of rendered output, whatever the stored texts' size


def _make(cls: type[T], **values: Any) -> T:
    """A record by field name; a field not given is None (records grow fields over time)."""
    return cls(**{f.name: values.get(f.name) for f in fields(cls)})  # type: ignore[arg-type]


def _letter(text: str, **kw: Any) -> DeadLetter:
    values = dict(id=7, job_id=9, job_type="email", payload={"to": "x"}, error_class="TERMINAL",
                  last_error=text, attempts=1, correlation_id="cid", status="DISCARDED",
                  dead_at=NOW, resolved_at=NOW, resolved_by="alice", resolution_reason=text)
    return _make(DeadLetter, **{**values, **kw})


def _detail(text: str) -> DeadLetterDetail:
    run = RunRecord(run_key="email:job-9:1", function_name="email", run_id="job-9", attempt=1,
                    status="FAILED", started_at=NOW, error_class="TERMINAL",
                    terminal_error=text)
    audit = _make(AuditEntry, operator="alice", action="discard", outcome="ok", reason=text,
                  detail={}, at=NOW)
    return DeadLetterDetail(_letter(text), [run], [audit])


def _rendered(draw, *args) -> str:
    out = io.StringIO()
    draw(*args, console=Console(file=out, width=200))
    return out.getvalue()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("shape", ["unbroken", "words"])
def test_show_is_bounded_in_a_table_and_whole_in_json(size: int, shape: str) -> None:
    text = "x" * size if shape == "unbroken" else ("word " * size)[:size]
    shown = _rendered(dlq_render.print_detail, _detail(text))
    assert len(shown) < BOUND, len(shown)
    assert "more, see --format json)" in shown
    whole = json.loads(dlq_render.to_json(_detail(text)))
    assert whole["letter"]["resolution_reason"] == text == whole["letter"]["last_error"]
    assert whole["audit"][0]["reason"] == text == whole["attempts"][0]["terminal_error"]


@pytest.mark.parametrize("size", SIZES)
def test_list_is_bounded_in_a_table_and_whole_in_json(size: int) -> None:
    text = "x" * size
    letters = [_letter(text, id=i, job_type="t" * size) for i in range(1, 4)]
    shown = _rendered(dlq_render.print_letters, letters, None)
    assert len(shown) < 3 * BOUND, len(shown)
    page = json.loads(dlq_render.page_json(DeadLetterPage(letters, None), None))
    assert all(d["last_error"] == text for d in page["dead_letters"])


def test_a_cut_says_how_much_is_left_and_where_to_read_it() -> None:
    assert dlq_render.cut("abc", 3) == "abc"
    assert dlq_render.cut("abcdef", 3) == "abc… (3 more, see --format json)"
    assert dlq_render.cut(None, 3) == ""
    # Cut after escaping: what is shown is bounded, and the count is of what was left out.
    assert dlq_render.cut("\x00\x00", 4) == "\\x00… (4 more, see --format json)"


def test_short_texts_are_shown_whole_and_inert() -> None:
    shown = _rendered(dlq_render.print_detail, _detail("bad [/bold] \x1b[2J [link=x]y[/link]"))
    assert "more, see" not in shown and "\x1b" not in shown
    assert shown.count("bad [/bold] \\x1b[2J [link=x]y[/link]") >= 3  # error, reason, audit
