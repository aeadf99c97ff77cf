"""The bundled suites (baseline, pruning, checkpoints) and their per-profile data (profiles.py).

Installed with the package as ``harness.suites`` (pyproject.toml maps this folder onto that
name), so a project runs them without a clone: ``harness suites pruning [pytest args]`` or
``pytest --pyargs harness.suites.pruning``. In a checkout they are ``suites/`` as well; the
modules import each other relatively, so either name works.
"""
