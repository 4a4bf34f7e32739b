"""The command line: one thin task module per area, assembled into one namespace by the
top-level ``tasks.py`` (``invoke ...`` in the repository) and served by the same namespace as
the ``phasegate`` console command (:mod:`cli.program`) from any directory.

Tasks only parse flags, call the packages and render; the packages never import Invoke.
"""
