"""report.html: one self-contained page (inline CSS, inline SVG plots, the session's own plot
PNGs as data URIs, no script, no network) with the verdict table failing rows first (each failing
gap beside its cause), history sparklines, per-state curves, the runs, the environment and the
provenance. The page fits a 1,400 px window: long values wrap inside their cells.

Every string that comes from a report (verdict ids, evidence, checkpoint keys, log lines, paths)
passes through :func:`harness.escape.html_text`; the page's Content-Security-Policy forbids
scripts and any fetch, so even a missed escape could not run code or reach the network. Only the
plots the session wrote (``report["plots"]``, regular files under ``plots/`` of the report's
folder) are read from disk.
"""
from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Optional

from harness.escape import dumps, html_text
from harness.gate import session_status, verdict_of
from harness.report import cells
from harness.report.pruning import PLOT_DIR

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_PNG_BYTES = 20 * 2**20
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2330}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde}
.meta{color:#556}.failed{color:#b3261e}.passed{color:#1e7b34}
table{border-collapse:collapse;margin:8px 0;font-size:13px;max-width:100%}
th,td{border:1px solid #d5d8e0;padding:4px 8px;text-align:left;vertical-align:top;
overflow-wrap:anywhere;word-break:break-word}
th{background:#f1f3f8;overflow-wrap:normal;word-break:normal}
tr.fail td{background:#fdeceb}tr.regression td{background:#fbd9d6}
table#verdicts{table-layout:fixed;width:100%}
#verdicts col.id{width:16%}#verdicts col.n{width:7%}#verdicts col.bar{width:8%}
#verdicts col.gap{width:14%}#verdicts col.res{width:6%}#verdicts col.hist{width:10%}
#verdicts col.spark{width:130px}#verdicts col.ev{width:auto}
td.evidence table{width:100%;table-layout:fixed}td.evidence th{width:35%;overflow-wrap:anywhere}
td.num,.num{text-align:right;font-variant-numeric:tabular-nums}.why{color:#7a1f19;margin-top:4px}
code,pre{font-family:ui-monospace,monospace}
pre{background:#f6f7fa;padding:8px;overflow:auto;max-height:320px;white-space:pre-wrap;
overflow-wrap:anywhere}
details summary{cursor:pointer;color:#345}
.plots{display:flex;flex-wrap:wrap;gap:16px}.plot{border:1px solid #dde;padding:8px;max-width:100%}
.plot img,.plot svg{max-width:100%;height:auto}.badge{font-weight:600}
"""
_COLUMNS = (("verdict", "id"), ("observed", "n"), ("bar", "bar"), ("gap", "gap"), ("result", "res"),
            ("last green", "hist"), ("change since previous", "hist"), ("history", "spark"),
            ("evidence", "ev"))


def esc(value: object) -> str:
    """Text for HTML: every string from a report goes through here."""
    return html_text(value)


# --- inline SVG -----------------------------------------------------------------------------
def sparkline(values: list, passed: list, width: int = 120, height: int = 28) -> str:
    """An inline SVG line of ``values`` (None skipped), red dots where the verdict failed."""
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    if not points:
        return ""
    xs = _scale([i for i, _ in points], 4, width - 4) if len(values) > 1 else [width / 2]
    ys = _scale([v for _, v in points], height - 4, 4)
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{"#1e7b34" if passed[i] else "#b3261e"}"/>'
                   for (i, _), x, y in zip(points, xs, ys))
    return (f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img"><polyline fill="none" stroke="#456" stroke-width="1.3" points="{line}"/>'
            f"{dots}</svg>")


def line_plot(title: str, series: dict, xlabel: str, ylabel: str, width: int = 420,
              height: int = 220) -> str:
    """An inline SVG plot of named series ``{name: [(x, y), ...]}``."""
    pts = [(x, y) for s in series.values() for x, y in s if y is not None]
    if not pts:
        return ""
    left, right, top, bottom = 48, width - 12, 24, height - 34
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 1, y1 + 1
    sx = lambda x: left + (right - left) * ((x - x0) / (x1 - x0) if x1 > x0 else 0.5)  # noqa: E731
    sy = lambda y: bottom - (bottom - top) * (y - y0) / (y1 - y0)  # noqa: E731
    colours = ("#1f5fa8", "#c2571a", "#2e8540", "#7a3fa0", "#a0262b", "#4b6070")
    body = [f'<text x="{left}" y="16" font-size="13" font-weight="600">{esc(title)}</text>',
            f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#999"/>',
            f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#999"/>',
            f'<text x="{left - 4}" y="{top + 4}" font-size="10" text-anchor="end">{y1:.4g}</text>',
            f'<text x="{left - 4}" y="{bottom}" font-size="10" text-anchor="end">{y0:.4g}</text>',
            f'<text x="{left}" y="{bottom + 14}" font-size="10">{x0:g}</text>',
            f'<text x="{right}" y="{bottom + 14}" font-size="10" text-anchor="end">{x1:g}</text>',
            f'<text x="{(left + right) / 2}" y="{height - 4}" font-size="11" text-anchor="middle">'
            f'{esc(xlabel)}</text>',
            f'<text x="12" y="{(top + bottom) / 2}" font-size="11" text-anchor="middle" '
            f'transform="rotate(-90 12 {(top + bottom) / 2})">{esc(ylabel)}</text>']
    for k, (name, s) in enumerate(series.items()):
        colour = colours[k % len(colours)]
        xy = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s if y is not None)
        body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{xy}">'
                    f"<title>{esc(name)}</title></polyline>")
        body.append(f'<text x="{right}" y="{top + 12 * (k + 1)}" font-size="10" text-anchor="end" '
                    f'fill="{colour}">{esc(name)}</text>')
    return (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
            + "".join(body) + "</svg>")


def _scale(values: list, lo: float, hi: float) -> list:
    a, b = min(values), max(values)
    if b - a < 1e-12:
        return [(lo + hi) / 2 for _ in values]
    return [lo + (hi - lo) * (v - a) / (b - a) for v in values]


# --- sections -------------------------------------------------------------------------------
def _verdict_rows(report: dict) -> list[str]:
    trends = (report.get("history") or {}).get("verdicts", {})
    verdicts = sorted((verdict_of(v) for v in report.get("verdicts", [])),
                      key=lambda v: (v.passed, not cells.regression(trends.get(v.id, {})), v.id))
    rows = []
    for v in verdicts:
        trend = trends.get(v.id, {})
        regression = cells.regression(trend)
        cls = "pass" if v.passed else ("fail regression" if regression else "fail")
        result = "pass" if v.passed else ("FAIL (regression)" if regression else "FAIL")
        series = trend.get("series") or []
        spark = sparkline([s[1] for s in series], [bool(s[2]) for s in series])
        why = cells.why(v)
        cause = f'<div class="why">{esc(why)}</div>' if why else ""
        rows.append(
            f'<tr class="{cls}"><td><code>{esc(v.id)}</code><br>{esc(v.title)}</td>'
            f'<td class="num">{esc(cells.fmt(v.observed, v.unit))}</td><td>{esc(cells.bar(v))}</td>'
            f'<td class="gap"><span class="num">{esc(cells.gap(v))}</span>{cause}</td>'
            f'<td class="badge">{esc(result)}</td><td>{esc(cells.last_green(trend, v))}</td>'
            f"<td>{esc(cells.change(trend, v))}</td><td>{spark}</td>"
            f"<td class=\"evidence\">{_evidence(v.evidence)}</td></tr>")
    return rows


def _evidence(evidence: dict) -> str:
    """The evidence as a two-column table; null values are left out, long values wrap."""
    shown = {k: val for k, val in evidence.items() if val is not None}
    if not shown:
        return ""
    items = "".join(f"<tr><th>{esc(k)}</th><td>{esc(_short(val))}</td></tr>" for k, val in shown.items())
    return f"<details><summary>{len(shown)} items</summary><table>{items}</table></details>"


def _short(value: object, limit: int = 400) -> str:
    text = value if isinstance(value, str) else dumps(value, separators=(", ", ": "))
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _curves(report: dict) -> list[str]:
    """Per-run plots: test accuracy per epoch of each state, and best accuracy per state."""
    plots = []
    for run in report.get("runs", []):
        states = run.get("states", [])
        epochs = {f"state {s['state']}": list(enumerate(s["test_curve"], 1))
                  for s in states if s.get("test_curve")}
        if epochs:
            plots.append(line_plot(f"{run['case']}: test accuracy per epoch", epochs, "epoch",
                                   "test accuracy %"))
        if len(states) > 1:
            per_state = {"best": [(s["state"], s.get("best_accuracy")) for s in states],
                         "final": [(s["state"], s.get("final_accuracy")) for s in states]}
            plots.append(line_plot(f"{run['case']}: accuracy per state", per_state, "state",
                                   "test accuracy %"))
    return [f'<div class="plot">{p}</div>' for p in plots if p]


def _images(report: dict, folder: Optional[Path]) -> list[str]:
    """The plots this session wrote (``report["plots"]``: paths under ``plots/`` of the report's
    folder), inlined as data URIs. Nothing else is read: no other string of the report, no path
    outside the folder, no link, no file that is not a regular PNG."""
    plots = report.get("plots") or {}
    if not plots:
        return []
    if folder is None:
        return [_image_problem(name, "no report folder given, not inlined") for name in plots]
    root = (Path(folder) / PLOT_DIR).resolve()
    return [_image_block(str(name), root, str(rel)) for name, rel in plots.items()]


def _image_problem(name: str, problem: str) -> str:
    return f'<div class="plot"><p class="failed">{esc(name)}: {esc(problem)}</p></div>'


def _plot_file(root: Path, rel: str) -> tuple[Optional[Path], str]:
    """The regular file ``rel`` names directly inside ``root`` (the plots folder), or why not."""
    parts = Path(rel).parts
    if len(parts) != 2 or parts[0] != PLOT_DIR or parts[1] in (".", "..") or not rel.endswith(".png"):
        return None, f"{rel} is not a file under {PLOT_DIR}/, not inlined"
    path = root / parts[1]
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None, "not found"
    if not stat.S_ISREG(info.st_mode) or path.resolve().parent != root:
        return None, "not a regular file inside the report folder, not inlined"
    if info.st_size > MAX_PNG_BYTES:
        return None, f"larger than {MAX_PNG_BYTES // 2**20} MiB, not inlined"
    return path, ""


def _image_block(name: str, root: Path, rel: str) -> str:
    path, problem = _plot_file(root, rel)
    if path is not None:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(MAX_PNG_BYTES + 1)
        if not data.startswith(PNG_MAGIC) or len(data) > MAX_PNG_BYTES:
            path, problem = None, "not a PNG file of at most 20 MiB"
    if path is None:
        return _image_problem(name, problem)
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return (f'<div class="plot"><img alt="{esc(name)}" src="{uri}"><br>'
            f"<small>{esc(name)}</small></div>")


def _runs(report: dict) -> list[str]:
    runs = report.get("runs", [])
    if not runs:
        return []
    rows = []
    for run in runs:
        for s in run.get("states", []):
            rows.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in (
                run["case"], run["run_id"], s["state"], cells.fmt(s.get("best_accuracy"), "%"),
                cells.fmt(s.get("final_accuracy"), "%"), cells.fmt(s.get("sparsity"), "%"), s.get("epochs"),
                cells.fmt(s.get("seconds"), "s"), "yes" if run.get("reused") else "no",
                s.get("checkpoint") or "-")) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("case", "run id", "state", "best", "final", "sparsity",
                                             "epochs", "time", "reused", "checkpoint"))
    out = ["<h2>Runs</h2>", f"<table><tr>{head}</tr>{''.join(rows)}</table>"]
    for run in runs:
        prov = {k: run.get(k) for k in ("source", "model", "dataset", "init", "spec", "init_audit",
                                        "environment")}
        out.append(f"<details><summary>provenance of {esc(run['case'])} ({esc(run['run_id'])})"
                   f"</summary><pre>{esc(dumps(prov, indent=2))}</pre></details>")
    return out


def _table(mapping: dict) -> str:
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(_short(v))}</td></tr>"
                   for k, v in mapping.items() if v is not None)
    return f"<table>{rows}</table>"


def _header(report: dict) -> list[str]:
    status = session_status(report)
    regressions = (report.get("counts") or {}).get("regressions") or 0
    colour = "passed" if status.passed else "failed"
    lines = [f"<title>harness report: {esc(status.word)} ({esc(report.get('profile'))})</title>",
             f"<style>{_CSS}</style></head><body>",
             f'<h1 class="{colour}">harness report: {esc(status.word)}</h1>',
             f'<p class="meta">profile <code>{esc(report.get("profile"))}</code> · '
             f'{status.passed_verdicts}/{status.verdicts} verdicts passed · '
             f'{esc(regressions)} regression(s) · {esc(report.get("created", ""))} · '
             f'{esc(report.get("timings", {}).get("duration_s", "-"))} s</p>']
    if not status.passed:
        lines.append(f'<p class="failed"><b>FAILED</b>: {esc(status.headline().partition(": ")[2])}</p>')
    return lines


def render_html(report: dict, folder: Optional[Path] = None) -> str:
    """The page for ``report`` (report.json's dict); its plots are read from ``folder``."""
    plots = _curves(report) + _images(report, Path(folder) if folder is not None else None)
    cols = "".join(f'<col class="{c}">' for _, c in _COLUMNS)
    head = "".join(f"<th>{h}</th>" for h, _ in _COLUMNS)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f'<meta http-equiv="Content-Security-Policy" content="{CSP}">', *_header(report),
             "<h2>Verdicts</h2>",
             f'<table id="verdicts"><colgroup>{cols}</colgroup><tr>{head}</tr>'
             f'{"".join(_verdict_rows(report))}</table>'
             if report.get("verdicts") else "<p>No verdicts were recorded.</p>"]
    if plots:
        parts += ["<h2>Plots</h2>", f'<div class="plots">{"".join(plots)}</div>']
    parts += _runs(report)
    parts += ["<h2>Environment</h2>", _table(report.get("environment", {})),
              "<h2>Provenance</h2>", _table(_provenance(report)), "</body></html>"]
    return "\n".join(parts) + "\n"


def _provenance(report: dict) -> dict:
    history = report.get("history") or {}
    items = {"schema": report.get("schema"), "options": report.get("options", {}),
             "exit_status": report.get("exit_status"), "tests": report.get("counts", {}).get("tests"),
             "history store": history.get("store"), "history session": history.get("session")}
    return {k: v for k, v in items.items() if v is not None}


__all__ = ["render_html", "sparkline", "line_plot", "esc"]
