"""``invoke dlq.*`` flags: ages, ids and formats, each refused in one clear error."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime

import pytest

from cli.dlq import (
    check_format,
    check_text,
    next_page_command,
    parse_age,
    parse_cursor,
    parse_id,
    parse_limit,
)
from ledger.errors import ConfigError


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("15m", 900), ("1h", 3600),
                                           ("2d", 172800), ("1.5h", 5400)])
def test_parse_age(text: str, seconds: float) -> None:
    assert parse_age(text).total_seconds() == seconds


@pytest.mark.parametrize("bad", ["", "soon", "1y", "-1h", "h"])
def test_parse_age_rejects(bad: str) -> None:
    with pytest.raises(ConfigError):
        parse_age(bad)


def test_parse_id_and_format() -> None:
    assert parse_id("12") == 12
    for bad in ("x", "0", "-3", None):
        with pytest.raises(ConfigError):
            parse_id(bad)
    assert check_format("json") == "json"
    with pytest.raises(ConfigError):
        check_format("xml")


def test_operator_text_is_refused_over_its_bound_not_cut() -> None:
    assert check_text("--reason", "r" * 10, 10) == "r" * 10
    assert check_text("--reason", None, 10) is None
    with pytest.raises(ConfigError, match="^--reason is 11 characters, over the 10-character"):
        check_text("--reason", "r" * 11, 10)
    with pytest.raises(ConfigError, match="is 12 characters"):  # counted as stored: escaped
        check_text("--reason", "\x00" * 3, 10)


def test_the_help_states_the_bound_the_ledger_enforces() -> None:
    from cli.dlq import discard, requeue
    from ledger.deadletter import MAX_REASON_CHARS

    for task in (discard, requeue):
        assert f"at most {MAX_REASON_CHARS} characters" in task.help["reason"]


def test_parse_limit_is_a_page_size_from_1_to_1000() -> None:
    assert [parse_limit(v) for v in ("1", "1000", 7, " 25 ", None)] == [1, 1000, 7, 25, 100]
    for bad in ("abc", "0", "99999999999999999999", "-1", "1001", "1.5", "", "1e3", "٣"):
        with pytest.raises(ConfigError, match="^--limit must be a whole number from 1 to 1000"):
            parse_limit(bad)


def test_a_cursor_token_round_trips_exactly_and_nonsense_is_refused() -> None:
    from ledger.deadletter import PageCursor

    at = datetime(2026, 3, 1, 3, 0, 0, 123457, tzinfo=UTC)
    cursor = PageCursor(at, 42)
    assert parse_cursor(cursor.token()) == cursor and cursor.token() == "1772334000123457-42"
    for bad in ("x", "1-0", "-1-2", "1-99999999999999999999", "9" * 18 + "-1", "1 - 2",
                "1772334000123457-42; rm -rf /", ""):
        with pytest.raises(ConfigError, match="^--cursor must be the token"):
            parse_cursor(bad)


def test_the_next_page_command_repeats_the_flags_and_masks_the_password() -> None:
    line = next_page_command("17-4", function="email send", error_class="terminal",
                             older_than="1h", status="all", limit=50, fmt="json",
                             env="staging", db_url="postgresql://ops:s3cret@db/app")
    assert "s3cret" not in line
    assert shlex.split(line) == [
        "invoke", "dlq.list", "--function", "email send", "--error-class", "terminal",
        "--older-than", "1h", "--status", "all", "--limit", "50", "--format", "json",
        "--env", "staging", "--db-url", "postgresql://ops:***@db/app", "--cursor", "17-4"]
    assert next_page_command("17-4", limit=100) == "invoke dlq.list --cursor 17-4"
