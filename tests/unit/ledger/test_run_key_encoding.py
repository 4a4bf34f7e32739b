"""Issue 13: run keys and status keys are injective and decodable; unchanged for plain names."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from ledger import redis_layout as rl

# Names built mostly from the characters that matter, so collisions would be found.
AWKWARD = st.text(alphabet=st.sampled_from(list(":%3A25aé ж\n")), max_size=8) | st.text(max_size=8)
ATTEMPTS = st.integers(min_value=1, max_value=10_000)
TRIPLES = st.tuples(AWKWARD, AWKWARD, ATTEMPTS)


def test_the_finding_no_longer_collides() -> None:
    # Under 'function:run_id:attempt' both were 'email:send:user42:1'.
    a, b = ("email:send", "user42"), ("email", "send:user42")
    assert rl.legacy_run_key(*a, 1) == rl.legacy_run_key(*b, 1)
    assert rl.run_key(*a, 1) != rl.run_key(*b, 1)
    assert rl.status_key(*a) != rl.status_key(*b)
    assert rl.run_key(*a, 1) == "email%3Asend:user42:1"
    assert rl.run_key(*b, 1) == "email:send%3Auser42:1"


@settings(max_examples=400, deadline=None)
@given(TRIPLES, TRIPLES)
@example(("email:send", "user42", 1), ("email", "send:user42", 1))
@example(("a%3Ab", "x", 1), ("a:b", "x", 1))
@example(("a%", "3A", 1), ("a", "%3A", 1))
def test_distinct_triples_never_share_a_key(x: tuple[str, str, int], y: tuple[str, str, int]) -> None:
    if x != y:
        assert rl.run_key(*x) != rl.run_key(*y)
    if x[:2] != y[:2]:
        assert rl.status_key(*x[:2]) != rl.status_key(*y[:2])


@settings(max_examples=400, deadline=None)
@given(TRIPLES)
@example(("", "", 1))
@example(("%253A", "%3a", 12))
def test_keys_decode_to_what_they_encode(x: tuple[str, str, int]) -> None:
    assert rl.parse_run_key(rl.run_key(*x)) == x
    assert rl.parse_status_key(rl.status_key(*x[:2])) == x[:2]
    assert rl.unescape(rl.escape(x[0])) == x[0]
    assert rl.SEPARATOR not in rl.escape(x[0])


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters=":%"), max_size=12),
       st.text(alphabet=st.characters(blacklist_characters=":%"), max_size=12), ATTEMPTS)
def test_names_without_colon_or_percent_keep_the_keys_they_have_today(
        fn: str, run_id: str, attempt: int) -> None:
    assert not rl.is_escaped(fn, run_id)
    assert rl.run_key(fn, run_id, attempt) == rl.legacy_run_key(fn, run_id, attempt)
    assert rl.status_key(fn, run_id) == rl.legacy_status_key(fn, run_id)


@settings(max_examples=200, deadline=None)
@given(AWKWARD, AWKWARD)
def test_legacy_owners_are_every_name_pair_with_that_legacy_key(fn: str, run_id: str) -> None:
    owners = rl.legacy_owners(rl.legacy_status_key(fn, run_id))
    assert (fn, run_id) in owners
    assert all(rl.legacy_status_key(*o) == rl.legacy_status_key(fn, run_id) for o in owners)
    assert len(owners) == (fn + ":" + run_id).count(":")


def test_what_no_run_has_as_its_key_parses_to_none() -> None:
    for key in ("a:b:c:1", "a%b:c:1", "a:b:x", "a:b:01", "a:b", "a%3ab:c:1", "a:b:1:"):
        assert rl.parse_run_key(key) is None, key
    for key in ("jobstatus:a:b:c", "jobstatus:100%:x", "jobstatus:index", "other:a:b"):
        assert rl.parse_status_key(key) is None, key
    assert rl.parse_status_key("jobstatus:a%3Ab:") == ("a:b", "")


def test_a_legacy_hash_is_told_from_an_escaped_one() -> None:
    marked = {rl.KEY_ENCODING_FIELD: rl.KEY_ENCODING, "status": "RUNNING"}
    assert rl.is_legacy_hash("jobstatus:email:send:user42", {"status": "RUNNING"})
    assert rl.is_legacy_hash("jobstatus:a%3Ab:x", {"status": "RUNNING"})  # ('a%3Ab', 'x')'s
    assert not rl.is_legacy_hash("jobstatus:a%3Ab:x", marked)  # ('a:b', 'x')'s
    assert not rl.is_legacy_hash("jobstatus:email.send:job-1", {"status": "RUNNING"})
    assert not rl.is_legacy_hash(rl.INDEX_KEY, {})


def test_the_sql_escape_table_is_the_python_one() -> None:
    p = rl.SQL_ESCAPE_PARAMS
    assert ((p["pct"], p["pct_escaped"]), (p["colon"], p["colon_escaped"])) == rl.ESCAPES
