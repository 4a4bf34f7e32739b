"""expand: integrity in the database — dead-letter state machine, operator functions, who acted

What the CLI used to enforce, PostgreSQL now enforces for every role and every client:

* **Dead letters** (trigger ``background_dead_letter_guard``, BEFORE INSERT/UPDATE/DELETE):
  a letter is born OPEN and unresolved; its snapshot (job_id, job_type, payload, error_class,
  last_error, attempts, correlation_id, dead_at) never changes; status moves only OPEN ->
  REQUEUED | DISCARDED, and a resolved letter is final (no way back to OPEN, so no second
  requeue); ``requeued_job_id`` is set once, only with REQUEUED; the resolution columns are set
  only with the transition (``resolved_at`` is the database's clock). DELETE is refused
  outright: retention prunes runs and dispatch windows, never dead letters (``ledger/sql/
  retention.sql``), so "discard never deletes history" holds without an exception.
  SQLSTATEs: 23514 (check_violation) for a broken rule, 42501 (insufficient_privilege) for
  DELETE, as the append-only tables already answer.
* **Operator actions** are SECURITY DEFINER functions, the only way the operator role can
  change a letter: ``phasegate_dlq_requeue(id, display_name, reason)``,
  ``phasegate_dlq_discard(id, display_name, reason)`` (a non-blank reason) and
  ``phasegate_dlq_inspect(id, display_name)``. Each locks the letter, checks its state, writes
  the audit row and (requeue) inserts the new job in one transaction. Requeue enqueues the
  **letter's** job_type and payload — what ``dlq.show`` displayed — never the job row's
  current ones; max_attempts and dispatch_key, which the letter has no snapshot of, come from
  the old job (they bound retries and name the dispatch window; they do not choose what runs),
  and the audit detail records them. A refused action (missing, not OPEN, no reason) is
  audited as ``refused`` and *returned* (outcome not_found | not_open | reason_required):
  raising would roll the audit row back.
* **Who acted**: ``db_role`` on ``background_operator_audit`` and ``phasegate_rollout_event``
  is overwritten with ``session_user`` by a BEFORE INSERT trigger (the login role: neither SET
  ROLE nor a SECURITY DEFINER function changes it); ``operator`` / ``actor`` stay the display
  name the caller chose. Rows written before this revision have ``db_role`` NULL.
* **Append-only by the database**: a BEFORE TRUNCATE statement trigger on both logs
  (UPDATE/DELETE were refused already, p0002/p0006), and both tables are handed to an owner
  role the rollouts do not run as (``PHASEGATE_ROLE_OWNER``, default ``phasegate_owner``), so
  the migrating role can neither TRUNCATE nor DISABLE TRIGGER (nor DROP them, provided it owns
  neither the schema nor the database: ``infra/`` gives both to the owner role too). It keeps SELECT and INSERT,
  granted by the new owner (a log's writer needs nothing more; the definer functions insert
  audit rows as it). Skipped with a NOTICE when the role does not exist, the migrating role
  is not a member of it, or it may not CREATE in the schema (ALTER ... OWNER TO requires all
  three): tests and the demo run as a superuser without it.
* **Privileges**: app keeps SELECT, INSERT on dead letters (the write path inserts letters)
  and loses UPDATE, DELETE there and everything on the audit; operator loses its column UPDATE
  on dead letters and INSERT on background_job and the audit, and gets EXECUTE on the three
  functions (revoked from PUBLIC). ``p0011`` is unchanged (it shipped); this revision revokes
  on top of it and the downgrade grants exactly that back.

Locks: ACCESS EXCLUSIVE for an instant on the event log and the audit (ADD COLUMN, OWNER TO),
SHARE ROW EXCLUSIVE on the dead letters (CREATE TRIGGER), each under safe_ddl's lock_timeout
and retry; never on background_job. The dead letters come last: the table the application
writes is held for the shortest time.

Downgrade restores the previous behaviour exactly, ownership included. Giving a table back
needs the owner role's privileges (PostgreSQL 15 checks ownership by inheritance, not by SET
ROLE): a superuser has them; a migrator that is only a non-inheriting member of the owner role
(as ``infra/`` declares it) does not, so the downgrade then refuses before changing anything
and says what to do.
"""

from __future__ import annotations

import json
import os

from alembic import op
from sqlalchemy import text

from migrations import safe_ddl

revision = "p0014_expand_ledger_integrity"
down_revision = "p0013_expand_requeued_job_ux"
branch_labels = None
depends_on = None
phase = "expand"

ROLE_ENV = {"app": "PHASEGATE_ROLE_APP", "operator": "PHASEGATE_ROLE_OPERATOR",
            "owner": "PHASEGATE_ROLE_OWNER"}
ROLE_DEFAULTS = {"app": "app", "operator": "operator", "owner": "phasegate_owner"}
DEAD_LETTER_RESOLUTION = ("status", "resolved_at", "resolved_by", "resolution_reason",
                          "requeued_job_id")
# What p0011 granted and this revision takes back: role key -> [(table, privileges, columns)].
REVOKED: dict[str, list[tuple[str, tuple[str, ...], tuple[str, ...] | None]]] = {
    "app": [("background_dead_letter", ("UPDATE", "DELETE"), None),
            ("background_operator_audit", ("SELECT", "INSERT"), None)],
    "operator": [("background_dead_letter", ("UPDATE",), DEAD_LETTER_RESOLUTION),
                 ("background_job", ("INSERT",), None),
                 ("background_operator_audit", ("INSERT",), None)],
}
DROP_FUNCTIONS = (
    "DROP FUNCTION IF EXISTS phasegate_dlq_requeue(bigint, text, text), "
    "phasegate_dlq_discard(bigint, text, text), phasegate_dlq_inspect(bigint, text), "
    "phasegate_dlq_audit(text, bigint, text, text, text, jsonb), phasegate_dead_letter_guard(), "
    "phasegate_record_session_role()")

SESSION_ROLE_FN = """
CREATE OR REPLACE FUNCTION phasegate_record_session_role() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- The login role: SET ROLE and SECURITY DEFINER change current_user, not session_user.
  NEW.db_role := session_user;
  RETURN NEW;
END;
$$
"""

DEAD_LETTER_GUARD_FN = """
CREATE OR REPLACE FUNCTION phasegate_dead_letter_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'dead letter %: discard never deletes history: DELETE refused', OLD.id
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF TG_OP = 'INSERT' THEN
    IF NEW.status <> 'OPEN' OR NEW.resolved_at IS NOT NULL OR NEW.resolved_by IS NOT NULL
       OR NEW.resolution_reason IS NOT NULL OR NEW.requeued_job_id IS NOT NULL THEN
      RAISE EXCEPTION 'dead letter for job %: a dead letter is born OPEN and unresolved', NEW.job_id
        USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
  END IF;
  IF (NEW.id, NEW.job_id, NEW.job_type, NEW.payload, NEW.error_class, NEW.last_error,
      NEW.attempts, NEW.correlation_id, NEW.dead_at)
     IS DISTINCT FROM (OLD.id, OLD.job_id, OLD.job_type, OLD.payload, OLD.error_class,
      OLD.last_error, OLD.attempts, OLD.correlation_id, OLD.dead_at) THEN
    RAISE EXCEPTION 'dead letter %: its snapshot (job, type, payload, error, attempts, '
      'correlation, dead_at) never changes', OLD.id USING ERRCODE = 'check_violation';
  END IF;
  IF OLD.status <> 'OPEN' THEN
    IF NEW IS DISTINCT FROM OLD THEN
      RAISE EXCEPTION 'dead letter %: % is final', OLD.id, OLD.status
        USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
  END IF;
  IF NEW.status = 'OPEN' THEN
    IF NEW.resolved_at IS NOT NULL OR NEW.resolved_by IS NOT NULL
       OR NEW.resolution_reason IS NOT NULL OR NEW.requeued_job_id IS NOT NULL THEN
      RAISE EXCEPTION 'dead letter %: resolution columns are set only with REQUEUED or DISCARDED',
        OLD.id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
  END IF;
  IF coalesce(NEW.resolved_by, '') !~ '[^[:space:]]' THEN
    RAISE EXCEPTION 'dead letter %: % needs resolved_by', OLD.id, NEW.status
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.status = 'REQUEUED' AND NEW.requeued_job_id IS NULL THEN
    RAISE EXCEPTION 'dead letter %: REQUEUED needs requeued_job_id', OLD.id
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.status = 'DISCARDED' AND NEW.requeued_job_id IS NOT NULL THEN
    RAISE EXCEPTION 'dead letter %: requeued_job_id is set only with REQUEUED', OLD.id
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.status = 'DISCARDED' AND coalesce(NEW.resolution_reason, '') !~ '[^[:space:]]' THEN
    RAISE EXCEPTION 'dead letter %: DISCARDED needs a reason', OLD.id
      USING ERRCODE = 'check_violation';
  END IF;
  NEW.resolved_at := now();  -- the database's clock, not the caller's
  RETURN NEW;
END;
$$
"""

# Not callable by PUBLIC: the definer functions below call it as their owner.
AUDIT_FN = """
CREATE OR REPLACE FUNCTION phasegate_dlq_audit(action text, letter_id bigint, display_name text,
                                               outcome text, reason text, detail jsonb)
RETURNS void LANGUAGE sql AS $$
  INSERT INTO background_operator_audit
      (operator, action, target_kind, target_id, outcome, reason, detail)
  VALUES ($3, $1, 'dead_letter', $2::text, $4, $5, $6)
$$
"""

REQUEUE_FN = """
CREATE OR REPLACE FUNCTION phasegate_dlq_requeue(letter_id bigint, display_name text,
                                                 reason text DEFAULT NULL)
RETURNS TABLE (outcome text, letter_status text, new_job_id bigint, new_correlation_id text)
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
  who text := coalesce(nullif(btrim(display_name), ''), session_user);
  letter background_dead_letter%ROWTYPE;
  old_job record;
BEGIN
  SELECT d.* INTO letter FROM background_dead_letter d WHERE d.id = letter_id FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM phasegate_dlq_audit('requeue', letter_id, who, 'refused', reason,
                                jsonb_build_object('status', 'missing'));
    RETURN QUERY SELECT 'not_found', 'missing', NULL::bigint, NULL::text;
    RETURN;
  END IF;
  IF letter.status <> 'OPEN' THEN
    PERFORM phasegate_dlq_audit('requeue', letter_id, who, 'refused', reason,
                                jsonb_build_object('status', letter.status));
    RETURN QUERY SELECT 'not_open', letter.status::text, NULL::bigint, NULL::text;
    RETURN;
  END IF;
  SELECT j.max_attempts, j.dispatch_key INTO STRICT old_job
    FROM background_job j WHERE j.id = letter.job_id;  -- the foreign key keeps it
  new_correlation_id := replace(gen_random_uuid()::text, '-', '');
  -- What runs is the letter's snapshot, the one the operator inspected.
  INSERT INTO background_job (type, payload, max_attempts, correlation_id, dispatch_key)
  VALUES (letter.job_type, letter.payload, old_job.max_attempts, new_correlation_id,
          old_job.dispatch_key)
  RETURNING id INTO new_job_id;
  UPDATE background_dead_letter
     SET status = 'REQUEUED', resolved_by = who, resolution_reason = reason,
         requeued_job_id = new_job_id
   WHERE id = letter_id;
  PERFORM phasegate_dlq_audit('requeue', letter_id, who, 'ok', reason, jsonb_build_object(
    'new_job_id', new_job_id, 'correlation_id', new_correlation_id, 'old_job_id', letter.job_id,
    'job_type', letter.job_type, 'max_attempts', old_job.max_attempts,
    'dispatch_key', old_job.dispatch_key));
  outcome := 'ok';
  letter_status := 'REQUEUED';
  RETURN NEXT;
END;
$$
"""

DISCARD_FN = """
CREATE OR REPLACE FUNCTION phasegate_dlq_discard(letter_id bigint, display_name text, reason text)
RETURNS TABLE (outcome text, letter_status text)
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
  who text := coalesce(nullif(btrim(display_name), ''), session_user);
  letter background_dead_letter%ROWTYPE;
BEGIN
  SELECT d.* INTO letter FROM background_dead_letter d WHERE d.id = letter_id FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM phasegate_dlq_audit('discard', letter_id, who, 'refused', reason,
                                jsonb_build_object('status', 'missing'));
    RETURN QUERY SELECT 'not_found', 'missing';
    RETURN;
  END IF;
  IF letter.status <> 'OPEN' THEN
    PERFORM phasegate_dlq_audit('discard', letter_id, who, 'refused', reason,
                                jsonb_build_object('status', letter.status));
    RETURN QUERY SELECT 'not_open', letter.status::text;
    RETURN;
  END IF;
  IF coalesce(reason, '') !~ '[^[:space:]]' THEN
    PERFORM phasegate_dlq_audit('discard', letter_id, who, 'refused', reason,
                                jsonb_build_object('status', 'OPEN', 'rule', 'reason required'));
    RETURN QUERY SELECT 'reason_required', 'OPEN';
    RETURN;
  END IF;
  UPDATE background_dead_letter
     SET status = 'DISCARDED', resolved_by = who, resolution_reason = reason
   WHERE id = letter_id;
  PERFORM phasegate_dlq_audit('discard', letter_id, who, 'ok', reason, '{}'::jsonb);
  RETURN QUERY SELECT 'ok', 'DISCARDED';
END;
$$
"""

# FOR SHARE, not FOR UPDATE: inspections do not queue behind each other, and the status the
# audit row records cannot change before it commits.
INSPECT_FN = """
CREATE OR REPLACE FUNCTION phasegate_dlq_inspect(letter_id bigint, display_name text)
RETURNS TABLE (outcome text, letter_status text)
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
  who text := coalesce(nullif(btrim(display_name), ''), session_user);
  found_status text;
BEGIN
  SELECT d.status::text INTO found_status FROM background_dead_letter d
   WHERE d.id = letter_id FOR SHARE;
  IF NOT FOUND THEN
    PERFORM phasegate_dlq_audit('inspect', letter_id, who, 'refused', NULL,
                                jsonb_build_object('status', 'missing'));
    RETURN QUERY SELECT 'not_found', 'missing';
    RETURN;
  END IF;
  PERFORM phasegate_dlq_audit('inspect', letter_id, who, 'ok', NULL,
                              jsonb_build_object('status', found_status));
  RETURN QUERY SELECT 'ok', found_status;
END;
$$
"""

# A SECURITY DEFINER function resolves names through the caller's search_path unless pinned;
# pg_temp goes last explicitly (unlisted, it is searched *first* for tables, so a caller's
# temporary "background_dead_letter" would shadow the real one). The schema is the one the
# migrations run in. The function list is constant; only current_schema() is formatted in.
PIN_SEARCH_PATH = """
DO $pin$
DECLARE
  fn text;
BEGIN
  FOREACH fn IN ARRAY ARRAY[
    'phasegate_dlq_requeue(bigint, text, text)', 'phasegate_dlq_discard(bigint, text, text)',
    'phasegate_dlq_inspect(bigint, text)',
    'phasegate_dlq_audit(text, bigint, text, text, text, jsonb)'] LOOP
    EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, %I, pg_temp', fn,
                   current_schema());
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn);
  END LOOP;
  REVOKE ALL ON FUNCTION phasegate_dead_letter_guard(), phasegate_record_session_role()
    FROM PUBLIC;
END
$pin$
"""

# The operator's role name arrives as data (set_config) and is quoted with %I.
GRANT_EXECUTE = """
DO $exec$
DECLARE
  grantee text := current_setting('phasegate.operator_role');
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = grantee) THEN
    RAISE NOTICE 'phasegate integrity: role % does not exist; EXECUTE on the dead-letter '
      'functions not granted', grantee;
    RETURN;
  END IF;
  EXECUTE format('GRANT EXECUTE ON FUNCTION phasegate_dlq_requeue(bigint, text, text), '
                 'phasegate_dlq_discard(bigint, text, text), phasegate_dlq_inspect(bigint, text) '
                 'TO %I', grantee);
END
$exec$
"""

ADD_EVENT_ROLE = "ALTER TABLE phasegate_rollout_event ADD COLUMN IF NOT EXISTS db_role text"
EVENT_ROLE_TRIGGER = (
    "CREATE TRIGGER phasegate_rollout_event_session_role BEFORE INSERT ON phasegate_rollout_event "
    "FOR EACH ROW EXECUTE FUNCTION phasegate_record_session_role()")
EVENT_TRUNCATE_TRIGGER = (
    "CREATE TRIGGER phasegate_rollout_event_no_truncate BEFORE TRUNCATE ON phasegate_rollout_event "
    "FOR EACH STATEMENT EXECUTE FUNCTION phasegate_append_only()")
ADD_AUDIT_ROLE = "ALTER TABLE background_operator_audit ADD COLUMN IF NOT EXISTS db_role text"
AUDIT_ROLE_TRIGGER = (
    "CREATE TRIGGER background_operator_audit_session_role BEFORE INSERT "
    "ON background_operator_audit FOR EACH ROW EXECUTE FUNCTION phasegate_record_session_role()")
AUDIT_TRUNCATE_TRIGGER = (
    "CREATE TRIGGER background_operator_audit_no_truncate BEFORE TRUNCATE "
    "ON background_operator_audit FOR EACH STATEMENT EXECUTE FUNCTION phasegate_append_only()")
DEAD_LETTER_TRIGGER = (
    "CREATE TRIGGER background_dead_letter_guard BEFORE INSERT OR UPDATE OR DELETE "
    "ON background_dead_letter FOR EACH ROW EXECUTE FUNCTION phasegate_dead_letter_guard()")

# Both blocks walk each log paired with the table created beside it by the same revision
# (p0002, p0006): that table's owner is the role that owned the log before, which keeps SELECT
# and INSERT and gets the log back on downgrade. Table names are constant; only the owner
# role's name is data (%I).

TRANSFER_OWNERSHIP = """
DO $own$
DECLARE
  new_owner text := current_setting('phasegate.owner_role');
  me text := current_user;
  pair text[];
  holder text;
  writer text;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = new_owner) THEN
    RAISE NOTICE 'phasegate integrity: role % does not exist; the event log and the audit '
      'stay owned by the role that runs migrations', new_owner;
    RETURN;
  END IF;
  IF NOT pg_has_role(current_user, new_owner, 'MEMBER') THEN
    RAISE NOTICE 'phasegate integrity: % is not a member of %; ownership not transferred',
      current_user, new_owner;
    RETURN;
  END IF;
  IF NOT has_schema_privilege(new_owner, current_schema(), 'USAGE, CREATE') THEN
    RAISE NOTICE 'phasegate integrity: % may not USAGE, CREATE in schema %; ownership not '
      'transferred', new_owner, current_schema();
    RETURN;
  END IF;
  FOREACH pair SLICE 1 IN ARRAY ARRAY[['phasegate_rollout_event', 'phasegate_rollout_state'],
                                  ['background_operator_audit', 'background_dead_letter']] LOOP
    SELECT pg_get_userbyid(relowner) INTO holder FROM pg_class WHERE oid = to_regclass(pair[1]);
    SELECT pg_get_userbyid(relowner) INTO writer FROM pg_class WHERE oid = to_regclass(pair[2]);
    CONTINUE WHEN holder = new_owner;
    IF NOT pg_has_role(current_user, holder, 'USAGE') THEN
      RAISE NOTICE 'phasegate integrity: % is owned by %, not by %; ownership not transferred',
        pair[1], holder, current_user;
      CONTINUE;
    END IF;
    EXECUTE format('ALTER TABLE %I OWNER TO %I', pair[1], new_owner);
    -- Granted by the new owner: a grant made before the transfer would be merged into it.
    EXECUTE format('SET LOCAL ROLE %I', new_owner);
    EXECUTE format('GRANT SELECT, INSERT ON TABLE %I TO %I', pair[1], writer);
    EXECUTE format('SET LOCAL ROLE %I', me);
  END LOOP;
END
$own$
"""

RETURN_OWNERSHIP = """
DO $disown$
DECLARE
  pair text[];
  holder text;
  writer text;
BEGIN
  FOREACH pair SLICE 1 IN ARRAY ARRAY[['phasegate_rollout_event', 'phasegate_rollout_state'],
                                  ['background_operator_audit', 'background_dead_letter']] LOOP
    SELECT pg_get_userbyid(relowner) INTO holder FROM pg_class WHERE oid = to_regclass(pair[1]);
    SELECT pg_get_userbyid(relowner) INTO writer FROM pg_class WHERE oid = to_regclass(pair[2]);
    CONTINUE WHEN holder = writer;
    IF NOT (pg_has_role(current_user, holder, 'USAGE')
            AND pg_has_role(current_user, writer, 'MEMBER')) THEN
      RAISE EXCEPTION 'p0014 downgrade: % is owned by % and % cannot give it back to %', pair[1],
        holder, current_user, writer
        USING ERRCODE = 'insufficient_privilege',
              HINT = format('run this downgrade as a superuser, or let %s inherit %s for it '
                            '(ALTER ROLE ... INHERIT on the member role, as an admin)',
                            current_user, holder);
    END IF;
    -- The new owner's grant to the writer merges into the writer's owner privileges.
    EXECUTE format('ALTER TABLE %I OWNER TO %I', pair[1], writer);
  END LOOP;
END
$disown$
"""

# p0011's grant block, repeated rather than imported: a shipped revision's code is frozen, and
# a revision must not change when another one is edited. Names arrive as data (set_config) and
# are quoted with %I; privileges and the verb are checked against fixed lists.
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
    """Role key -> role name, from the environment (the names Pulumi created)."""
    return {key: os.environ.get(var, "").strip() or ROLE_DEFAULTS[key]
            for key, var in ROLE_ENV.items()}


def revoked_items() -> list[dict[str, object]]:
    names = role_names()
    return [{"role": names[key], "table": table, "privilege": privilege,
             "columns": list(columns) if columns else None}
            for key, grants in REVOKED.items()
            for table, privileges, columns in grants
            for privilege in privileges]


def _with_settings(sql: str, settings: dict[str, str], what: str) -> None:
    """Run a constant DO block with its inputs as transaction-local settings (data, never
    SQL text), under safe_ddl's lock_timeout and retry."""
    conn = op.get_bind()

    def work() -> None:
        for name, value in settings.items():
            conn.execute(text("SELECT set_config(:name, :value, true)"),
                         {"name": name, "value": value})
        conn.execute(text(sql))  # phasegate-lint: ignore[PG018] reason: constant DO blocks; role and table names arrive as settings and are quoted with %I; grants and ownership only, no table lock beyond the GRANT's

    safe_ddl.with_lock_retry(conn, work, what=what)


def _grants(verb: str) -> None:
    spec = json.dumps({"verb": verb, "items": revoked_items()})
    _with_settings(APPLY_GRANTS, {"phasegate.grants": spec}, f"{verb.lower()} p0011 privileges")


def upgrade() -> None:
    safe_ddl.execute(SESSION_ROLE_FN, what="create phasegate_record_session_role()")
    safe_ddl.execute(DEAD_LETTER_GUARD_FN, what="create phasegate_dead_letter_guard()")
    safe_ddl.execute(AUDIT_FN, what="create phasegate_dlq_audit()")
    safe_ddl.execute(REQUEUE_FN, what="create phasegate_dlq_requeue()")
    safe_ddl.execute(DISCARD_FN, what="create phasegate_dlq_discard()")
    safe_ddl.execute(INSPECT_FN, what="create phasegate_dlq_inspect()")
    safe_ddl.execute(PIN_SEARCH_PATH, what="pin the functions' search_path")  # phasegate-lint: ignore[PG018] reason: ALTER FUNCTION / REVOKE on the kit's own functions, names quoted; no table lock
    _with_settings(GRANT_EXECUTE, {"phasegate.operator_role": role_names()["operator"]},
                   "grant EXECUTE to the operator")
    # Each table's ACCESS EXCLUSIVE statement first: the triggers after it wait for nothing.
    safe_ddl.execute(ADD_EVENT_ROLE)
    safe_ddl.execute(EVENT_ROLE_TRIGGER)
    safe_ddl.execute(EVENT_TRUNCATE_TRIGGER)
    safe_ddl.execute(ADD_AUDIT_ROLE)
    safe_ddl.execute(AUDIT_ROLE_TRIGGER)
    safe_ddl.execute(AUDIT_TRUNCATE_TRIGGER)
    _grants("REVOKE")
    _with_settings(TRANSFER_OWNERSHIP, {"phasegate.owner_role": role_names()["owner"]},
                   "hand the event log and the audit to the owner role")
    safe_ddl.execute(DEAD_LETTER_TRIGGER)


def downgrade() -> None:
    safe_ddl.execute(RETURN_OWNERSHIP, what="give the event log and the audit back")  # phasegate-lint: ignore[PG018] reason: ownership given back to the migrating role, names quoted with %I; no table rewrite
    safe_ddl.execute("DROP TRIGGER IF EXISTS background_dead_letter_guard ON background_dead_letter")
    _grants("GRANT")
    safe_ddl.execute(
        "DROP TRIGGER IF EXISTS background_operator_audit_no_truncate ON background_operator_audit")
    safe_ddl.execute(
        "DROP TRIGGER IF EXISTS background_operator_audit_session_role ON background_operator_audit")
    safe_ddl.execute(
        "DROP TRIGGER IF EXISTS phasegate_rollout_event_no_truncate ON phasegate_rollout_event")
    safe_ddl.execute(
        "DROP TRIGGER IF EXISTS phasegate_rollout_event_session_role ON phasegate_rollout_event")
    # The db_role columns stay: they are who acted, on append-only logs that every rollout
    # writes, so dropping them would make even an automated rollback lose audit history.
    # Old code ignores them; the upgrade finds them again (ADD COLUMN IF NOT EXISTS).
    safe_ddl.execute(DROP_FUNCTIONS, what="drop the integrity functions")
