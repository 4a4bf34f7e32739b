"""Invoke entry point: one root collection built from a module per area.

Tasks are thin: they parse flags and call into the packages (which never import Invoke).
``invoke --list`` shows every task; ``invoke --help TASK`` shows its flags.
"""

from __future__ import annotations

from invoke import Collection

from tasks import local

ns = Collection()
ns.add_collection(Collection.from_module(local, name="local"))
