"""The ``phasegate`` console command: Invoke's ``Program`` serving ``tasks.py``'s namespace.

``pip install`` puts ``phasegate`` on PATH; it works from any directory (no ``tasks.py``
needed there), reads ``phasegate.toml`` from the folder it finds (see
:func:`cli.base.project_dir`) and writes plans and reports there. In the repository,
``invoke ...`` runs the very same tasks.
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import PackageNotFoundError, version

from invoke import Argument, Program

import tasks
from cli.logs import FORMATS, configure_logging


def _version() -> str:
    try:
        return version("phasegate")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown"


class PhasegateProgram(Program):
    """Invoke's CLI with one more core flag: ``--log-format text|json``."""

    def core_args(self) -> list[Argument]:
        return [*super().core_args(), Argument(
            names=("log-format",),
            help=f"how log lines are written to stderr: {' | '.join(FORMATS)} (default text)",
        )]

    def parse_core(self, argv: list[str] | None) -> None:
        super().parse_core(argv)
        fmt = self.args["log-format"].value
        if fmt:
            configure_logging(fmt)


program = PhasegateProgram(name="phasegate", binary="phasegate", namespace=tasks.ns,
                           version=_version())


def main() -> None:
    """Console-script entry point."""
    try:
        program.run()
    except BrokenPipeError:
        # Output piped into `head` that stopped reading: quiet, as other commands are. Point
        # stdout at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
