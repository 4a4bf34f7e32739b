"""``invoke dlq.*`` flags: ages, ids and formats, each refused in one clear error."""

from __future__ import annotations

import pytest

from cli.dlq import check_format, check_text, parse_age, parse_id
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
