"""The human output of `harness inspect`: per file, its verdict, claim, time and a short table of
tensor groups (consecutive numbered groups with the same verdict merged: ``blocks.0-11``).

File names and tensor keys come from outside: every line is escaped for the terminal, and the
lone surrogates of a name that is not UTF-8 show as ``\\udcff``."""
from __future__ import annotations

from harness.escape import terminal
from harness.forensics.judgement import describe, natural


def render_inspections(results: list) -> str:
    lines: list[str] = []
    for r in results:
        lines += _file_lines(r) + [""]
    bad = sum(1 for r in results if r.problem)
    lines.append(f"{len(results)} file(s) inspected; {bad} contradict their claim"
                 if bad else f"{len(results)} file(s) inspected; none contradicts its claim")
    return "\n".join(_printable(line) for line in lines) + "\n"


def _printable(line: str) -> str:
    """A terminal-safe line that any UTF-8 stream can write: lone surrogates (the bytes of a
    name that is not UTF-8, a key decoded with surrogatepass) shown as ``\\udcff``."""
    return terminal(line).encode("utf-8", "backslashreplace").decode("utf-8")


def _file_lines(r) -> list[str]:
    mark = "FAIL" if r.problem else "ok"
    claim = f"  claims pretrained: {r.claim}" if r.claim else ""
    lines = [f"{mark:4}  {r.path}  [{r.seconds:.2f} s]{claim}", f"      {r.line()}"]
    if r.container and (r.container != "top level" or r.stripped_prefixes or r.has_ema):
        prefixes = f", stripped {', '.join(r.stripped_prefixes)}" if r.stripped_prefixes else ""
        ema = ", an EMA copy exists" if r.has_ema else ""
        lines.append(f"      state dict: {r.container}{prefixes}{ema}")
    rows = _merged_rows(sorted(r.groups + r.silent_groups, key=lambda g: natural(g.name)))
    if rows:
        width = max(len(name) for name, _, _ in rows)
        lines += [f"      {name:<{width}}  {verdict:<18}  {words}" for name, verdict, words in rows]
    if r.load_audit is not None:
        lines += [f"      load audit: {r.load_audit['summary']}"]
    return lines


def _merged_rows(groups: list) -> list[tuple]:
    rows, run = [], []
    for g in groups:
        if run and _mergeable(run[-1], g):
            run.append(g)
            continue
        if run:
            rows.append(_row(run))
        run = [g]
    if run:
        rows.append(_row(run))
    return rows


def _split(name: str) -> tuple:
    base, _, last = name.rpartition(".")
    return (base, int(last)) if last.isdigit() else (name, None)


def _mergeable(a, b) -> bool:
    (base_a, i), (base_b, j) = _split(a.name), _split(b.name)
    return i is not None and j == i + 1 and base_a == base_b and a.verdict == b.verdict


def _row(run: list) -> tuple:
    if len(run) == 1:
        return run[0].name, run[0].verdict, run[0].words()
    base, first = _split(run[0].name)
    name = f"{base}.{first}-{_split(run[-1].name)[1]}"
    return name, run[0].verdict, describe(run[0].verdict, [t for g in run for t in g.tensors])
