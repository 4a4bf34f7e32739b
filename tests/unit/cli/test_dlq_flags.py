"""``invoke dlq.*`` flags: ages, ids and formats, each refused in one clear error."""

from __future__ import annotations

import pytest

from cli.dlq import check_format, parse_age, parse_id
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
