"""What every phasegate package shares and nothing else: the one error root, masking of
secrets, URL forms, durations, JUnit XML and who is acting.

A neutral floor, like Alembic's ``util/exc.py``: ``infra/``, ``migrations/``, ``checks/``,
``rollout/`` and ``cli/`` import it without importing the application's ledger, and it
imports no other phasegate package (a unit test keeps it so).
"""
