"""A run folder in a few lines a person reads (``harness log DIR``): which files belong to which
state, the log and init file read, and what the run claims per state."""
from __future__ import annotations

from harness.runfolder.run import PrunedRun


def _name(path) -> str:
    return "-" if path is None else path.name


def folder_lines(run: PrunedRun) -> list[str]:
    claims, layout = run.claims, run.layout
    kind = "structured" if claims.structured else "unstructured"
    if claims.sources:
        kind += f", {claims.scope}"
    lines = [f"{run.record.source} {layout.folder}: {claims.method} ({kind}), claims from the "
             f"{claims.source}" if not claims.sources else
             f"{run.record.source} {layout.folder}: {claims.method} ({kind})",
             *_sources(claims),
             f"init file: {run.init_source() if layout.kind == 'store' or run.init else _no_init(run)}",
             f"rewind claimed: {claims.rewind or 'none it can show'}; masks nested: "
             f"{'yes' if claims.nested else 'no (re-selected each state)'}; penalty: "
             f"{'yes' if claims.penalised else 'no'}"]
    lines += [f"  {note}" for note in run.notes]
    for index in layout.indices():
        files = layout.states[index]
        lines.append(f"state {index}: {_name(files.checkpoint)}, best {_name(files.best)}"
                     f"{_claimed(run, index)}{_logged(run, index)}")
    return lines


def _no_init(run: PrunedRun) -> str:
    return "not declared" if run.layout.kind == "declared" else "not found"


def _sources(claims) -> list[str]:
    """Where each field of a declared claim was read."""
    shown = {"rate": f"{claims.rate:.4g}", "final_sparsity": None if claims.final_sparsity is None
             else f"{100 * claims.final_sparsity:.4g}%", "nested": "yes" if claims.nested else "no"}
    return [f"  claim {key} {shown.get(key) or getattr(claims, key, None)}: {where}"
            for key, where in claims.sources.items()]


def _logged(run: PrunedRun, index: int) -> str:
    """A declared layout's remaining line for the state, as its pattern read it."""
    if run.layout.kind != "declared" or run.log is None:
        return ""
    state = run.log.state(index)
    found = state.extra.get("remaining_weights") if state else None
    if not found:
        return "; the log prints no remaining line"
    return f"; log line {found[0]['line']}: {found[0]['remaining']:.2f}% remaining"


def _claimed(run: PrunedRun, index: int) -> str:
    if index == 0:
        return "; claims dense"
    if run.claims.per_state:
        return (f"; claims {run.claims.rate:g} of the heads and {run.claims.mlp_rate:g} of the MLP "
                f"neurons removed")
    if run.claims.recorded:
        target = run.claims.recorded.get(index)
        return "" if target is None else f"; claims sparsity {target:.2f}%"
    return f"; claims sparsity {100.0 * (1 - (1 - run.claims.rate) ** index):.2f}%"
