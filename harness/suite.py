"""The authoring API: what a test module declares to have runs trained and values judged.

A suite is an ordinary pytest module. It may set (see :mod:`harness.hookspec` for the contract):

``SUITE``
    the prefix of its case ids (default: the module's name);
``HARNESS_CASES``
    the runs it judges: a list of :class:`Case` (each may name the profiles it belongs to), or a
    mapping ``{profile: [Case, ...]}``; a test that takes the ``case`` fixture runs once per case
    of the session's profile;
``HARNESS_BARS``
    the bars its tests judge against: a list of :class:`Bar` (a threshold per profile where
    they differ).

Its tests take the ``harness`` fixture (:class:`harness.session.VerdictRecorder`):
``harness.run(case)`` trains (or reuses, or reads from a log) the case's run and returns its
:class:`~harness.record.RunRecord`; ``harness.check(id, value)``, ``check_accuracy(id, correct,
n)``, ``check_epoch(id, epoch)`` and ``check_seeds(id, values)`` judge against the bar ``id``.
Bars may also come from the ini file (``harness_bars``) and be overridden with
``--harness-expect``. Every verdict lands in report.json/md/html, the history and the gate.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Union

from harness.command import CommandSpec
from harness.expect import Expectation, ExpectationError, parse_override
from harness.spec import PruneSpec, Recipe, RunSpec

# the authoring API only; BarBook, parse_bar, cases_for, UnknownBar are the session's machinery
__all__ = ["Bar", "Case", "CheckpointFile", "CommandSpec", "PruneSpec", "Recipe", "RunSpec"]


@dataclass(frozen=True)
class Bar(Expectation):
    """A declared bar: an :class:`~harness.expect.Expectation` (``observed <op> threshold``) with
    another threshold in some profiles (``per_profile={"nightly": 95.0}``), or applying only in
    some (``profiles=("smoke",)``)."""

    per_profile: Mapping[str, float] = field(default_factory=dict)
    profiles: tuple = ()

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id or any(c.isspace() for c in self.id):
            raise ExpectationError(f"Bar.id must be a non-empty id without spaces, got {self.id!r}")
        for name, value in [("threshold", self.threshold), *self.per_profile.items()]:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ExpectationError(f"Bar {self.id!r}: threshold for {name!r} must be a finite "
                                       f"number, got {value!r}")
        super().__post_init__()            # op, unit and the statistics fields

    def for_profile(self, profile: str) -> Optional[Expectation]:
        """The bar as it applies in ``profile`` (a plain Expectation); None where it does not."""
        if self.profiles and profile not in self.profiles:
            return None
        return Expectation(self.id, self.title, self.op, self.per_profile.get(profile, self.threshold),
                           self.unit, self.tolerance, self.tolerance_se, self.seeds)


@dataclass(frozen=True)
class Case:
    """One run a suite judges: ``name`` (e.g. the dataset) and its spec: a
    :class:`~harness.spec.RunSpec` the harness trains, or a :class:`~harness.command.CommandSpec`
    whose command the harness runs. ``profiles`` limits it to some profiles; ``needs_init``
    refuses the session unless an init file is given."""

    name: str
    spec: Union[RunSpec, CommandSpec]
    profiles: tuple = ()
    needs_init: bool = False
    suite: str = ""          # set from the declaring module's SUITE when collected

    @property
    def id(self) -> str:
        return f"{self.suite}/{self.name}" if self.suite else self.name


@dataclass(frozen=True)
class CheckpointFile:
    """A file the ``checkpoint`` fixture hands to a test, and a claim made from outside it."""

    path: str
    claim: Optional[str] = None
    name: Optional[str] = None
    demo: Optional[str] = None     # a demonstration file's name (built by the suite itself)

    @property
    def id(self) -> str:
        return self.name or self.path


def cases_for(declared: Any, profile: str) -> list[Case]:
    """The cases of ``profile`` in a module's ``HARNESS_CASES`` (a list or a per-profile mapping)."""
    if declared is None:
        return []
    if isinstance(declared, Mapping):
        declared = declared.get(profile, [])
    cases = list(declared)
    bad = [c for c in cases if not isinstance(c, Case)]
    if bad:
        raise ExpectationError(f"HARNESS_CASES must hold harness.suite.Case objects, got "
                               f"{type(bad[0]).__name__}")
    return [c for c in cases if not c.profiles or profile in c.profiles]


_BAR_HEAD = re.compile(r"^\s*(?P<id>\S+?)\s*(?P<op>>=|<=|==)\s*(?P<value>\S+)(?:\s+(?P<unit>\S+))?\s*$")


def parse_bar(line: str) -> Bar:
    """``ID OP VALUE [UNIT] [-- TITLE]`` (an ini ``harness_bars`` line), e.g.
    ``imagenet/resnet50/state0/accuracy >= 75.9 % -- ResNet-50 top-1 on ImageNet``."""
    head, _, title = (line or "").partition(" -- ")
    match = _BAR_HEAD.match(head)
    if not match:
        raise ExpectationError(f"{line!r}: expected 'ID OP VALUE [UNIT] [-- TITLE]' with OP one "
                               f"of >=, <=, ==")
    override = parse_override(f"{match['id']}{match['op']}{match['value']}", "harness_bars line", line)
    return Bar(override.id, title.strip() or override.id, override.op, override.threshold,
               match["unit"] or "")


class UnknownBar(ExpectationError):
    """A verdict id no suite, ini file or option declared."""


class BarBook:
    """Every bar of the session: declared by the collected suites (one id may be declared once
    per profile), by the ini file, overridden by ``--harness-expect``. ``get(id)`` gives the bar
    as it applies in the session's profile."""

    def __init__(self, profile: str, overrides: tuple = (), config_bars: tuple = ()) -> None:
        self.profile = profile
        self.overrides = {o.id: o for o in overrides}
        self.bars: dict[str, list[tuple[Bar, str]]] = {}
        self.add(config_bars, "the ini file (harness_bars)")

    def add(self, bars: Any, source: str) -> None:
        for bar in bars or ():
            if not isinstance(bar, Bar):
                raise ExpectationError(f"{source}: HARNESS_BARS must hold harness.suite.Bar "
                                       f"objects, got {type(bar).__name__}")
            declared = self.bars.setdefault(bar.id, [])
            if any(known == bar for known, _ in declared):
                continue
            for known, where in declared:
                if not known.profiles or not bar.profiles or set(known.profiles) & set(bar.profiles):
                    raise ExpectationError(f"bar {bar.id!r} is declared twice for the same profile "
                                           f"with different values ({where} and {source})")
            declared.append((bar, source))

    def _applying(self, verdict_id: str, profile: str) -> Optional[Expectation]:
        for bar, _ in self.bars.get(verdict_id, ()):
            expectation = bar.for_profile(profile)
            if expectation is not None:
                return expectation
        return None

    def ids(self, profile: Optional[str] = None) -> list[str]:
        profile = profile or self.profile
        return sorted(i for i in self.bars if self._applying(i, profile) is not None)

    def has(self, verdict_id: str) -> bool:
        return self._applying(verdict_id, self.profile) is not None

    def get(self, verdict_id: str) -> Expectation:
        expectation = self._applying(verdict_id, self.profile)
        if expectation is None:
            known = ", ".join(self.ids()) or "none"
            raise UnknownBar(f"no bar {verdict_id!r} in profile {self.profile}; declare it in "
                             f"HARNESS_BARS or harness_bars; known ids: {known}")
        override = self.overrides.get(verdict_id)
        return expectation.with_threshold(override.op, override.threshold) if override else expectation

    def unknown_overrides(self) -> list[str]:
        return [i for i in self.overrides if not self.has(i)]
