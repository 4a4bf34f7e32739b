"""Every numeric setting has a range that keeps the kit's promise, declared next to its default;
``phasegate.toml`` and ``invoke check --param`` are validated by the same function, and each
refusal is one line that names the setting, the range and the value given."""

from __future__ import annotations

import math
import re
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from phasegate.errors import ConfigError
from rollout.settings import CHECK_INPUTS, PG_MAX_MS, Settings, check_params, setting_range

README = Path(__file__).resolve().parents[3] / "README.md"

# The findings of issue 13, each one value the kit used to accept.
FINDINGS = [
    ({"lock_timeout_ms": 0}, "setting lock_timeout_ms must be between 1 and 2147483647 (got 0)"),
    ({"lock_timeout_ms": PG_MAX_MS + 1},
     "setting lock_timeout_ms must be between 1 and 2147483647 (got 2147483648)"),
    ({"ddl_retries": 0}, "setting ddl_retries must be between 1 and 100 (got 0)"),
    ({"flag_ttl_seconds": 1e9}, "setting flag_ttl_seconds must be between 0 and 300 (got 1000000000)"),
    ({"flag_ttl_seconds": 1e300}, "setting flag_ttl_seconds must be between 0 and 300 (got 1e+300)"),
    ({"check_statement_timeout_ms": 0},
     "setting check_statement_timeout_ms must be between 1 and 2147483647 (got 0)"),
    ({"backfill_rows_per_second": 0.001},
     "setting backfill_rows_per_second must be 0 (off) or between 100 and 10000000 (got 0.001)"),
]


@pytest.mark.parametrize(("raw", "message"), FINDINGS, ids=[next(iter(r)) for r, _ in FINDINGS])
def test_each_finding_is_refused_in_one_line(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_mapping(raw)
    assert str(err.value) == message


def test_every_field_is_a_number_with_a_range_that_holds_its_default() -> None:
    for f in fields(Settings):
        rng = setting_range(f.name)
        assert type(f.default) in (int, float), f.name
        assert f.type == type(f.default).__name__, f"{f.name}: the default's type is the field's"
        assert rng.admits(f.default), (f.name, f.default, str(rng))
        assert rng.low <= rng.high, f.name


def test_ms_timeouts_fit_postgresql() -> None:
    for f in fields(Settings):
        if f.name.endswith("timeout_ms"):
            assert setting_range(f.name).low >= 1, f"{f.name}: 0 means wait forever"
            assert setting_range(f.name).high <= PG_MAX_MS, f.name


@pytest.mark.parametrize("name", [f.name for f in fields(Settings)])
def test_each_bound_is_inclusive_and_one_step_past_it_is_refused(name: str) -> None:
    rng = setting_range(name)
    whole = isinstance(getattr(Settings(), name), int)
    step = 1 if whole else 0.5
    for edge in (rng.low, rng.high):
        value = int(edge) if whole else float(edge)
        assert getattr(Settings.from_mapping({name: value}), name) == value
    for outside in (rng.low - step, rng.high + step):
        if rng.off is not None and outside == rng.off:
            continue
        with pytest.raises(ConfigError, match=rf"^setting {name} must be .*between .* \(got "):
            Settings.from_mapping({name: int(outside) if whole else float(outside)})


def test_an_off_value_outside_the_range_is_accepted() -> None:
    assert Settings.from_mapping({"backfill_rows_per_second": 0}).backfill_rows_per_second == 0.0


TYPES = [
    ({"lock_timeout_ms": "fast"}, "setting lock_timeout_ms must be a number, not 'fast'"),
    ({"lock_timeout_ms": "2000"}, "setting lock_timeout_ms must be a number, not '2000'"),
    ({"lock_timeout_ms": True}, "setting lock_timeout_ms must be a number, not True"),
    ({"lock_timeout_ms": math.nan}, "setting lock_timeout_ms must be a finite number, not nan"),
    ({"flag_ttl_seconds": -math.inf}, "setting flag_ttl_seconds must be a finite number, not -inf"),
    ({"ddl_retries": 2.5}, "setting ddl_retries must be a whole number, not 2.5"),
    ({"bogus": 1}, "unknown setting 'bogus'; known: "),
]


@pytest.mark.parametrize(("raw", "message"), TYPES, ids=[m.split(",")[0] for _, m in TYPES])
def test_types_are_refused(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_mapping(raw)
    assert str(err.value).startswith(message) and len(str(err.value).splitlines()) == 1


def test_values_take_the_field_type() -> None:
    s = Settings.from_mapping({"ddl_retries": 3.0, "soak_seconds": 60})
    assert s.ddl_retries == 3 and type(s.ddl_retries) is int
    assert s.soak_seconds == 60.0 and type(s.soak_seconds) is float


def test_no_settings_object_outside_its_ranges_can_exist() -> None:
    # Direct construction (demo, bench, tests) holds the same promise as the file.
    with pytest.raises(ConfigError, match="lock_timeout_ms must be between"):
        Settings(lock_timeout_ms=0)
    with pytest.raises(ConfigError, match="flag_ttl_seconds must be between"):
        replace(Settings(), flag_ttl_seconds=301)


def test_unknown_setting_in_a_table_names_the_table() -> None:
    with pytest.raises(ConfigError, match=r"^unknown setting 'bogus' in \[environments.prod.settings\]; known: "):
        Settings.from_mapping({"bogus": 1}, where="[environments.prod.settings]")


# --- invoke check --param: the same function, plus the rollout's check inputs -----------------

def test_params_read_text_as_toml_would() -> None:
    params = check_params({"triage_budget_ms": "20", "ddl_retries": "3", "parity_grace_seconds": "0.5"})
    assert params == {"triage_budget_ms": 20.0, "ddl_retries": 3, "parity_grace_seconds": 0.5}
    assert type(params["ddl_retries"]) is int and type(params["triage_budget_ms"]) is float


PARAMS = [
    ({"triage_budget_ms": "nan"}, "setting triage_budget_ms must be a finite number, not nan"),
    ({"triage_budget_ms": "inf"}, "setting triage_budget_ms must be a finite number, not inf"),
    ({"triage_budget_ms": "-inf"}, "setting triage_budget_ms must be a finite number, not -inf"),
    ({"triage_budget_ms": "fast"}, "setting triage_budget_ms must be a number, not 'fast'"),
    ({"lock_timeout_ms": "0"}, "setting lock_timeout_ms must be between 1 and 2147483647 (got 0)"),
    ({"ddl_retries": "2.5"}, "setting ddl_retries must be a whole number, not 2.5"),
    ({"triage_budget": "20"}, "unknown key 'triage_budget' in --param; known: "),
    ({"parity_since": "yesterday"}, "--param parity_since must be an ISO-8601 time (2024-05-01T12:00:00Z), not 'yesterday'"),
    ({"parity_since": "nan"}, "--param parity_since must be an ISO-8601 time (2024-05-01T12:00:00Z), not 'nan'"),
    ({"parity_since": "1714564800"}, "--param parity_since must be an ISO-8601 time (2024-05-01T12:00:00Z), not '1714564800'"),
    ({"dedupe_since": "2999-01-01T00:00:00Z"}, "--param dedupe_since must not be in the future"),
    ({"backfill_until_id": "-1"}, "--param backfill_until_id must be an id (a whole number from 0), not '-1'"),
    ({"backfill_until_id": "1.5"}, "--param backfill_until_id must be an id (a whole number from 0), not '1.5'"),
    ({"backfill_until_id": "nan"}, "--param backfill_until_id must be an id (a whole number from 0), not 'nan'"),
    ({"backfill_until_id": str(2**63)}, "--param backfill_until_id must be an id (a whole number from 0)"),
]


@pytest.mark.parametrize(("raw", "message"), PARAMS, ids=[str(r) for r, _ in PARAMS])
def test_bad_params_are_refused(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        check_params(raw)
    assert str(err.value).startswith(message) and len(str(err.value).splitlines()) == 1


def test_unknown_param_lists_settings_and_inputs() -> None:
    with pytest.raises(ConfigError) as err:
        check_params({"nope": "1"})
    known = str(err.value).split("known: ", 1)[1].split(", ")
    assert set(known) == {f.name for f in fields(Settings)} | set(CHECK_INPUTS)


def test_check_inputs_are_read_back_as_the_checks_expect() -> None:
    since = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    params = check_params({"parity_since": since.isoformat(), "backfill_until_id": "42",
                           "pruned_before": "2024-05-01T12:00:00"})  # naive means UTC
    assert params["backfill_until_id"] == 42
    assert datetime.fromisoformat(params["parity_since"]) == since
    assert params["pruned_before"] == "2024-05-01T12:00:00+00:00"


def test_check_inputs_are_the_params_the_checks_read() -> None:
    # A check reads a rollout input with ``probe.ctx.params.get("<name>")``: each such name is a
    # known input (so --param can pass it), and each known input is read by some check.
    reads: set[str] = set()
    for path in (Path(__file__).resolve().parents[3] / "checks").glob("*.py"):
        reads |= set(re.findall(r"ctx\.params\.get\(\"([a-z_]+)\"\)", path.read_text()))
    assert reads == set(CHECK_INPUTS)


# --- README: the settings table repeats the defaults and ranges -------------------------------

ROW = re.compile(r"^\| `(?P<name>[a-z_]+)` \| (?P<default>[0-9.]+) \| (?P<range>[^|]+?) \|")


def _readme_rows() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        m = ROW.match(line)
        if m:
            rows[m["name"]] = (m["default"], m["range"].strip())
    return rows


def test_readme_settings_table_matches_settings() -> None:
    rows = _readme_rows()
    assert list(rows) == [f.name for f in fields(Settings)], "every setting, in Settings order"
    for f in fields(Settings):
        default, shown = rows[f.name]
        assert float(default) == float(f.default), f.name
        assert shown == str(setting_range(f.name)), f.name
