"""The contract between the harness plugin and a suite: what a test module may set, the fixtures
it gets, what the plugin guarantees, and the pytest hooks a conftest.py or plugin may implement.
The names it describes live in :mod:`harness.suite` (declarations, also importable from
``harness``), :mod:`harness.session` (the ``harness`` fixture) and :mod:`harness.command`
(commands as runs). The hook specifications at the end are registered by the plugin
(``pytest_addhooks``); this module imports only pluggy, which pytest itself is built on.

Module-level names a test module (or a file it imports them from) may set
----------------------------------------------------------------------------
``SUITE: str``
    Prefix of the module's case ids (``<SUITE>/<case name>``: the key of its runs in the report,
    the xdist group of its tests). Default: the module's name.

``HARNESS_CASES: list[Case] | Mapping[str, list[Case]]``
    The runs the module judges. A :class:`~harness.suite.Case` holds a name, a spec and
    optionally the profiles it belongs to (``profiles=("smoke",)``) and ``needs_init=True``.
    The spec is a :class:`~harness.spec.RunSpec` (the harness trains it: model a timm name, a
    harness variant or ``"package.module:factory"``; dataset ``digits``, ``cifar10``,
    ``cifar100`` or ``"package.module:factory"``) or a :class:`~harness.command.CommandSpec`
    (the harness runs the user's command and reads its log). A test taking the ``case`` fixture
    runs once per case of the session's profile.

``HARNESS_BARS: list[Bar]``
    The bars the module's tests judge against (:class:`~harness.suite.Bar`: id, title, op,
    threshold, unit, tolerance, tolerance_se, seeds, per-profile thresholds or profiles). An id
    may be declared once per profile. The ini option ``harness_bars`` adds bars for every
    profile; ``--harness-expect ID>=VALUE`` moves one.

``DEMONSTRATION: list[CheckpointFile]``
    Checkpoint files the ``checkpoint`` fixture hands out when ``--harness-checkpoints`` is not
    given.

Fixtures
--------
``harness`` (function scope): the :class:`~harness.session.VerdictRecorder` of the test:
    ``run(case) -> RunRecord``, ``run_seeds(case, n)``, ``read_log(path, fmt=None)``,
    ``bar(id)``, ``has_bar(id)``, ``cases()`` (the module's cases this session),
    ``check(id, value, evidence)``, ``check_accuracy(id, correct, n)``,
    ``check_epoch(id, epoch)``, ``check_seeds(id, values)``,
    ``check_accuracy_seeds(id, [(correct, n), ...])``, ``record(verdict)``, ``profile``.
``case``: one :class:`~harness.suite.Case` of ``HARNESS_CASES`` (parametrized, id = its name).
``checkpoint``: one :class:`~harness.suite.CheckpointFile` (``--harness-checkpoints`` files and
    the ``--harness-init`` file, else the module's ``DEMONSTRATION``).
``harness_session`` (session scope): the :class:`~harness.session.HarnessSession`.

Guarantees
----------
- A test fails when a verdict it recorded fails; its message is one line per failing verdict:
  ``<title>: observed <value> vs expected <op> <bar> (gap <signed gap>)``. A run that cannot be
  made (a command's non-zero exit, an init that does not fit the model, data that cannot load)
  is a failing verdict ``<case id>/run`` naming the cause and the command's last output lines.
- An id no bar declares fails the test with one line listing the known ids.
- Every verdict of the session lands in ``<reports-dir>/latest/report.json``, ``report.md``,
  ``report.html``, the history (``history.sqlite``) and therefore ``harness gate``.
- Runs are stored under ``<reports-dir>/runs/<key>`` (the key hashes the spec, the code that
  defines the model, the init file's bytes; for a command, the command and the files it names)
  and reused while unchanged.
- A session that sets no harness option and uses none of this imports no torch and writes
  nothing.
"""

import pluggy

hookspec = pluggy.HookspecMarker("pytest")


@hookspec
def pytest_harness_update_json(config, report):
    """Add to or change the session's report before report.json (and report.md, report.html and
    the history row, which are written from it) is written; called once per session that writes
    reports, on the xdist controller only.

    :param pytest.Config config: the session's config.
    :param dict report: report.json's content; change it in place, e.g.
        ``report["lab"] = {"commit": "abc123"}``. After every implementation has run the report
        must still follow report.json's schema (harness.report.validate) and be strict JSON;
        otherwise no report is written and the session ends with one ``harness: ERROR:`` line
        naming the field (exit status 3, pytest's internal error).
    """


@hookspec
def pytest_harness_verdicts(item, verdicts):
    """Observe the verdicts a harness test recorded, once the test has run and before pytest
    decides its outcome; called in the process that ran the test (an xdist worker under ``-n``).

    :param pytest.Item item: the test.
    :param list[harness.Verdict] verdicts: its verdicts, in the order recorded (frozen; read
        ``verdict.id``, ``observed``, ``threshold``, ``gap``, ``passed``, ``evidence``).
    """
