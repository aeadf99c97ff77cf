"""The pruning section of the report: a PNG per pruning run (accuracy and sparsity per state),
one overlay of every method's accuracy against sparsity, and the per-state table of report.md.

Plots use matplotlib's Agg backend (no display) and are written atomically under
``<reports-dir>/latest/plots/``; report.json lists them under ``plots`` by case.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

from harness import storage
from harness.escape import md_text

PLOT_DIR = "plots"
OVERLAY = "pruning"


def pruning_runs(report: dict) -> list[dict]:
    """The report's runs that have pruned states."""
    return [r for r in report.get("runs", []) if any("target_sparsity" in s for s in r["states"])]


def _figure(width: float):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt, plt.subplots(1, 2, figsize=(width, 3.6), constrained_layout=True)


def _save(plt, fig, path: Path) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    storage.write_bytes(path, buffer.getvalue())
    return str(path)


def _series(run: dict) -> tuple[list, list, list, list]:
    states = [s for s in run["states"] if "target_sparsity" in s]
    return ([s["state"] for s in states], [s["stored_accuracy"] for s in states],
            [s["sparsity"] for s in states], [s["target_sparsity"] for s in states])


def _run_plot(run: dict, path: Path) -> str:
    plt, (fig, (acc, spa)) = _figure(9.0)
    index, accuracy, sparsity, target = _series(run)
    acc.plot(index, accuracy, "o-", label="stored model")
    acc.plot(index, [s["best_accuracy"] for s in run["states"] if "target_sparsity" in s], "x--",
             alpha=0.6, label="best epoch")
    acc.set(title=_title(f"{run['case']}: accuracy per state"), xlabel="state", ylabel="test accuracy (%)")
    spa.plot(index, sparsity, "o-", label="achieved (masks)")
    spa.plot(index, target, "k:", label="schedule")
    spa.set(title=_title(f"{run['case']}: sparsity per state"), xlabel="state", ylabel="sparsity (%)")
    for ax in (acc, spa):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_xticks(index)
    return _save(plt, fig, path)


def _overlay_plot(runs: list, path: Path) -> str:
    plt, (fig, (per_state, curve)) = _figure(9.0)
    for run in runs:
        index, accuracy, sparsity, _ = _series(run)
        per_state.plot(index, accuracy, "o-", label=_title(run["case"]))
        curve.plot(sparsity, accuracy, "o-", label=_title(run["case"]))
    per_state.set(title="accuracy per state", xlabel="state", ylabel="test accuracy (%)")
    per_state.xaxis.get_major_locator().set_params(integer=True)
    curve.set(title="accuracy against sparsity", xlabel="sparsity (%)", ylabel="test accuracy (%)")
    for ax in (per_state, curve):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(plt, fig, path)


def plot_name(case: str) -> str:
    """A plot's file name for ``case``: letters, digits, '.', '_' and '-' only."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", case.replace("/", "-")).lstrip(".") or "run"


def _title(text: str) -> str:
    """Text for a matplotlib title: a '$' would start mathtext."""
    return text.replace("$", r"\$")


def write_plots(report: dict, folder: Path) -> dict:
    """Write the plots of the report's pruning runs under ``folder/plots``; {name: path relative
    to ``folder``} (empty when the report has no pruning run)."""
    runs = pruning_runs(report)
    if not runs:
        return {}
    out, taken = {}, {OVERLAY}
    for run in runs:
        name = base = plot_name(run["case"])
        while name in taken:  # two cases with one file name, or a case named like the overlay
            name = f"{base}-{len(taken)}"
        taken.add(name)
        _run_plot(run, Path(folder) / PLOT_DIR / f"{name}.png")
        out[run["case"]] = f"{PLOT_DIR}/{name}.png"
    _overlay_plot(runs, Path(folder) / PLOT_DIR / f"{OVERLAY}.png")
    out[OVERLAY] = f"{PLOT_DIR}/{OVERLAY}.png"
    return out


def _pct(value) -> str:
    return "-" if value is None else f"{value:.2f}%"


def pruning_lines(report: dict) -> list[str]:
    """report.md's pruning section: the plots and one row per pruned-run state."""
    runs = pruning_runs(report)
    if not runs:
        return []
    plots = report.get("plots", {})
    lines = ["", "## Pruning", ""]
    lines += [f"![{md_text(name)}]({path})" for name, path in plots.items()]  # path: plots/NAME.png
    lines += ["", "| case | state | schedule | sparsity | stored acc | best acc | heads left | "
              "neurons left | RSST coefficient |", "|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        for s in (s for s in run["states"] if "target_sparsity" in s):
            left = s.get("channels_left", {})
            heads, neurons = left.get("head"), left.get("neuron")
            coef = s.get("penalty_coefficient")
            lines.append(
                f"| {md_text(run['case'])} | {s['state']} | {_pct(s['target_sparsity'])} | {_pct(s['sparsity'])} | "
                f"{_pct(s['stored_accuracy'])} | {_pct(s['best_accuracy'])} | "
                f"{f'{heads[0]}/{heads[1]}' if heads else '-'} | "
                f"{f'{neurons[0]}/{neurons[1]}' if neurons else '-'} | "
                f"{'-' if coef is None else f'{coef:.4g}'} |")
    return lines
