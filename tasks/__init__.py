"""Invoke entry point: one root collection built from a module per area.

Every module ``tasks/<area>.py`` (not starting with ``_``) contributes its tasks: as a
sub-collection ``<area>.*`` (``invoke dlq.list``), or at the root when the module sets
``AT_ROOT = True`` (``invoke rollout``, ``invoke plan``). Tasks are thin: they parse flags
and call into the packages, which never import Invoke.
``invoke --list`` shows every task; ``invoke --help TASK`` shows its flags.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

from invoke import Collection, Task

# Invoke puts tasks/ itself at the front of sys.path, where a task module named like a
# package (tasks/checks.py) would shadow that package on import: take it off again.
_TASKS_DIR = str(Path(__file__).resolve().parent)
while _TASKS_DIR in sys.path:
    sys.path.remove(_TASKS_DIR)

ns = Collection()

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name.startswith("_"):
        continue
    _module = importlib.import_module(f"{__name__}.{_info.name}")
    if getattr(_module, "AT_ROOT", False):
        for _obj in vars(_module).values():
            if isinstance(_obj, Task) and _obj.__module__ == _module.__name__:
                ns.add_task(_obj)
    else:
        ns.add_collection(Collection.from_module(_module, name=_info.name))
