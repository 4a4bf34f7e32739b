"""Alembic script directory for phasegate's reliability schema (see README.md here)."""
