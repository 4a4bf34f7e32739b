"""expand: table-level grants for the app, operator and readonly roles

Roles and database/schema privileges belong to Pulumi (``infra/components/database.py``);
table-level grants belong here, with the tables, so the migration that creates a table also
says who may use it. Least privilege, per role:

* ``app``: reads and writes ``background_job`` and the ledger tables; appends to the operator
  audit (SELECT, INSERT: no UPDATE or DELETE, the audit is append-only); reads
  ``phasegate_flag`` only (the app reads flags); nothing on the rollout tables.
* ``operator``: reads everything; resolves dead letters (UPDATE of the resolution columns
  only); requeue inserts a fresh ``background_job``; every action inserts an audit row.
  No DELETE anywhere.
* ``readonly``: SELECT on everything.

Identity columns need no sequence grant: ``nextval`` on an identity sequence is part of the
INSERT privilege on its table (there are no ``serial`` columns), so no sequence is granted.

Role names come from ``PHASEGATE_ROLE_APP`` / ``_OPERATOR`` / ``_READONLY`` (defaults
``app``, ``operator``, ``readonly``); a role that does not exist is skipped with a NOTICE, so
the revision also runs on servers where Pulumi did not create the roles (tests, the demo).
The role names reach the server as data (``set_config``) and become identifiers only through
``format('%I')``; the plpgsql block itself is constant. GRANT takes no table lock, but it
still runs under ``safe_ddl``'s lock_timeout and retry, like every statement here.

The downgrade revokes exactly what the upgrade granted, including SELECT that Pulumi's default
privileges may also have given ``operator`` and ``readonly`` on these tables; upgrading again
restores it.
"""

from __future__ import annotations

import json
import os

from alembic import op
from sqlalchemy import text

from migrations import safe_ddl

revision = "p0011_expand_grants"
down_revision = "p0009_expand_dead_letter_fk"
branch_labels = None
depends_on = None
phase = "expand"

ROLE_ENV = {"app": "PHASEGATE_ROLE_APP", "operator": "PHASEGATE_ROLE_OPERATOR",
            "readonly": "PHASEGATE_ROLE_READONLY"}
RW = ("SELECT", "INSERT", "UPDATE", "DELETE")
LEDGER_TABLES = ("background_dispatch_window", "background_function_run",
                 "background_dead_letter", "background_job_effect")
ALL_TABLES = ("background_job", "phasegate_flag", "phasegate_rollout_state",
              "phasegate_rollout_event", *LEDGER_TABLES, "background_operator_audit",
              "alembic_version")
# What an operator's dead-letter actions (requeue, discard) may change.
DEAD_LETTER_RESOLUTION = ("status", "resolved_at", "resolved_by", "resolution_reason",
                          "requeued_job_id")

# role key -> [(table, privileges, columns or None)]
GRANTS: dict[str, list[tuple[str, tuple[str, ...], tuple[str, ...] | None]]] = {
    "app": [
        ("background_job", RW, None),
        *[(table, RW, None) for table in LEDGER_TABLES],
        ("background_operator_audit", ("SELECT", "INSERT"), None),
        ("phasegate_flag", ("SELECT",), None),
    ],
    "operator": [
        *[(table, ("SELECT",), None) for table in ALL_TABLES],
        ("background_dead_letter", ("UPDATE",), DEAD_LETTER_RESOLUTION),
        ("background_job", ("INSERT",), None),
        ("background_operator_audit", ("INSERT",), None),
    ],
    "readonly": [(table, ("SELECT",), None) for table in ALL_TABLES],
}

# Constant: every name in it arrives through the 'phasegate.grants' setting and is quoted
# with %I; privileges and the verb are checked against fixed lists.
APPLY_GRANTS = """
DO $grants$
DECLARE
  spec jsonb := current_setting('phasegate.grants')::jsonb;
  verb text := spec->>'verb';
  item jsonb;
  cols text;
BEGIN
  IF verb NOT IN ('GRANT', 'REVOKE') THEN
    RAISE EXCEPTION 'phasegate grants: bad verb %', verb;
  END IF;
  FOR item IN SELECT * FROM jsonb_array_elements(spec->'items') LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = item->>'role') THEN
      RAISE NOTICE 'phasegate grants: role % does not exist; % on % skipped',
        item->>'role', item->>'privilege', item->>'table';
      CONTINUE;
    END IF;
    IF item->>'privilege' NOT IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE') THEN
      RAISE EXCEPTION 'phasegate grants: bad privilege %', item->>'privilege';
    END IF;
    cols := NULL;
    IF jsonb_typeof(item->'columns') = 'array' THEN
      SELECT string_agg(format('%I', c), ', ') INTO cols
        FROM jsonb_array_elements_text(item->'columns') AS c;
    END IF;
    EXECUTE format('%s %s%s ON TABLE %I %s %I',
      verb, item->>'privilege', coalesce(' (' || cols || ')', ''), item->>'table',
      CASE verb WHEN 'GRANT' THEN 'TO' ELSE 'FROM' END, item->>'role');
  END LOOP;
END
$grants$
"""


def role_names() -> dict[str, str]:
    """Role key -> role name, from the environment (the same names Pulumi created)."""
    return {key: os.environ.get(var, "").strip() or key for key, var in ROLE_ENV.items()}


def grant_items() -> list[dict[str, object]]:
    """One item per (role, table, privilege), with the column list where there is one."""
    names = role_names()
    return [
        {"role": names[key], "table": table, "privilege": privilege,
         "columns": list(columns) if columns else None}
        for key, grants in GRANTS.items()
        for table, privileges, columns in grants
        for privilege in privileges
    ]


def _apply(verb: str) -> None:
    conn = op.get_bind()
    spec = json.dumps({"verb": verb, "items": grant_items()})

    def work() -> None:
        conn.execute(text("SELECT set_config('phasegate.grants', :spec, true)"), {"spec": spec})
        conn.execute(text(APPLY_GRANTS))  # phasegate-lint: ignore[PG018] reason: GRANT/REVOKE only; verb and privilege are checked against fixed lists in the block, names quoted by %I

    safe_ddl.with_lock_retry(conn, work, what=f"{verb.lower()} table privileges")


def upgrade() -> None:
    _apply("GRANT")


def downgrade() -> None:
    _apply("REVOKE")
