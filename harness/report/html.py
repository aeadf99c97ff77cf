"""report.html: one self-contained page (inline CSS, inline SVG plots, PNGs as data URIs, no
script, no network) with the verdict table failing rows first, history sparklines, per-state
curves, the runs, the environment and the provenance.

Every string that comes from a report (verdict ids, evidence, checkpoint keys, log lines, paths)
passes through :func:`html.escape`; the page's Content-Security-Policy forbids scripts and any
fetch, so even a missed escape could not run code or reach the network.
"""
from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Optional

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_PNG_BYTES = 20 * 2**20
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2330}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde}
.meta{color:#556}.failed{color:#b3261e}.passed{color:#1e7b34}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #d5d8e0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f1f3f8}tr.fail td{background:#fdeceb}tr.regression td{background:#fbd9d6}
td.num{text-align:right;font-variant-numeric:tabular-nums}code,pre{font-family:ui-monospace,monospace}
pre{background:#f6f7fa;padding:8px;overflow:auto;max-height:320px}
details summary{cursor:pointer;color:#345}
.plots{display:flex;flex-wrap:wrap;gap:16px}.plot{border:1px solid #dde;padding:8px}
.plot img{max-width:640px}.badge{font-weight:600}
"""


def esc(value: object) -> str:
    """Text for HTML: every string from a report goes through here."""
    return html.escape(str(value), quote=True)


def _fmt(value, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.2f}{unit}" if unit == "%" else f"{value:.4g}{(' ' + unit) if unit else ''}"


def _gap_unit(unit: str) -> str:
    return " pp" if unit == "%" else (f" {unit}" if unit else "")


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
    verdicts = sorted(report.get("verdicts", []),
                      key=lambda v: (bool(v["passed"]), not v.get("regression"), v["id"]))
    rows = []
    for v in verdicts:
        trend = trends.get(v["id"], {})
        regression = bool(v.get("regression"))
        cls = "pass" if v["passed"] else ("fail regression" if regression else "fail")
        result = "pass" if v["passed"] else ("FAIL (regression)" if regression else "FAIL")
        series = trend.get("series") or []
        spark = sparkline([s[1] for s in series], [bool(s[2]) for s in series])
        rows.append(
            f'<tr class="{cls}"><td><code>{esc(v["id"])}</code><br>{esc(v.get("title", ""))}</td>'
            f'<td class="num">{esc(_fmt(v["observed"], v["unit"]))}</td><td>{esc(_bar(v))}</td>'
            f'<td class="num">{esc(_gap(v))}</td><td class="badge">{esc(result)}</td>'
            f"<td>{esc(_last_green(trend, v))}</td><td>{esc(_change(trend, v))}</td>"
            f"<td>{spark}</td><td>{_evidence(v.get('evidence') or {})}</td></tr>")
    return rows


def _bar(v: dict) -> str:
    if v["op"] == "within":
        return f"within {v.get('tolerance', 0):g} of {_fmt(v['threshold'], v['unit'])}"
    tolerance = (v.get("evidence") or {}).get("tolerance_se")
    extra = f" (tolerance {tolerance['k']:g} SE)" if isinstance(tolerance, dict) else ""
    return f"{v['op']} {_fmt(v['threshold'], v['unit'])}{extra}"


def _gap(v: dict) -> str:
    gap = v.get("gap")
    return "-" if gap is None or math.isnan(gap) else f"{gap:+.2f}{_gap_unit(v['unit'])}"


def _last_green(trend: dict, v: dict) -> str:
    if not trend:
        return "-"
    if v["passed"]:
        return "this session"
    green = trend.get("last_green")
    return "never" if not green else (f"{_fmt(green['observed'], v['unit'])} "
                                      f"({green['created']}, {str(green.get('git_commit'))[:12]})")


def _change(trend: dict, v: dict) -> str:
    if not trend:
        return "-"
    prev = trend.get("previous")
    if not prev:
        return "first session"
    change = trend.get("change")
    delta = "-" if change is None else f"{change:+.2f}{_gap_unit(v['unit'])}"
    return f"{delta} (was {_fmt(prev['observed'], v['unit'])}, {prev['created']})"


def _evidence(evidence: dict) -> str:
    if not evidence:
        return ""
    items = "".join(f"<tr><th>{esc(k)}</th><td>{esc(_short(val))}</td></tr>" for k, val in evidence.items())
    return f"<details><summary>{len(evidence)} items</summary><table>{items}</table></details>"


def _short(value: object, limit: int = 400) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
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


def png_references(report: dict) -> list[str]:
    """Every string in the report naming a .png file, in order of appearance."""
    found: list[str] = []

    def walk(obj) -> None:
        if isinstance(obj, dict):
            for value in obj.values():
                walk(value)
        elif isinstance(obj, (list, tuple)):
            for value in obj:
                walk(value)
        elif isinstance(obj, str) and obj.lower().endswith(".png") and obj not in found:
            found.append(obj)
    walk(report)
    return found


def _images(report: dict, folder: Optional[Path]) -> list[str]:
    """PNGs the report names (relative to its folder) and those lying in its folder, inlined."""
    refs = [(ref, (folder / ref) if folder is not None else Path(ref)) for ref in png_references(report)]
    if folder is not None and folder.is_dir():
        refs += [(p.name, p) for p in sorted(folder.glob("*.png"))]
    blocks, seen = [], set()
    for name, path in refs:
        key = str(path.resolve()) if path.exists() else name
        if key in seen:
            continue
        seen.add(key)
        blocks.append(_image_block(name, path))
    return blocks


def _image_block(name: str, path: Path) -> str:
    problem = None
    if not path.is_file():
        problem = "not found"
    elif path.stat().st_size > MAX_PNG_BYTES:
        problem = f"larger than {MAX_PNG_BYTES // 2**20} MiB, not inlined"
    else:
        data = path.read_bytes()
        if not data.startswith(PNG_MAGIC):
            problem = "not a PNG file"
    if problem:
        return f'<div class="plot"><p class="failed">{esc(name)}: {esc(problem)}</p></div>'
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
                run["case"], run["run_id"], s["state"], _fmt(s.get("best_accuracy"), "%"),
                _fmt(s.get("final_accuracy"), "%"), _fmt(s.get("sparsity"), "%"), s.get("epochs"),
                _fmt(s.get("seconds"), "s"), "yes" if run.get("reused") else "no",
                s.get("checkpoint") or "-")) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("case", "run id", "state", "best", "final", "sparsity",
                                             "epochs", "time", "reused", "checkpoint"))
    out = ["<h2>Runs</h2>", f"<table><tr>{head}</tr>{''.join(rows)}</table>"]
    for run in runs:
        prov = {k: run.get(k) for k in ("source", "model", "dataset", "init", "spec", "init_audit",
                                        "environment")}
        out.append(f"<details><summary>provenance of {esc(run['case'])} ({esc(run['run_id'])})"
                   f"</summary><pre>{esc(json.dumps(prov, indent=2, default=str))}</pre></details>")
    return out


def _table(mapping: dict) -> str:
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(_short(v))}</td></tr>" for k, v in mapping.items())
    return f"<table>{rows}</table>"


def render_html(report: dict, folder: Optional[Path] = None) -> str:
    """The page for ``report`` (report.json's dict); PNGs are looked up in ``folder``."""
    counts = report.get("counts", {})
    failed = counts.get("failed", 0)
    status = "FAILED" if failed else "passed"
    regressions = counts.get("regressions") or 0
    plots = _curves(report) + _images(report, Path(folder) if folder is not None else None)
    head = "".join(f"<th>{h}</th>" for h in ("verdict", "observed", "bar", "gap", "result",
                                             "last green", "change since previous", "history",
                                             "evidence"))
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>harness report: {esc(status)} ({esc(report.get('profile'))})</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<h1 class="{"failed" if failed else "passed"}">harness report: {esc(status)}</h1>',
        f'<p class="meta">profile <code>{esc(report.get("profile"))}</code> · '
        f'{esc(counts.get("passed", 0))}/{esc(counts.get("verdicts", 0))} verdicts passed · '
        f'{esc(regressions)} regression(s) · {esc(report.get("created", ""))} · '
        f'{esc(report.get("timings", {}).get("duration_s", "-"))} s</p>',
        "<h2>Verdicts</h2>",
        f'<table id="verdicts"><tr>{head}</tr>{"".join(_verdict_rows(report))}</table>'
        if report.get("verdicts") else "<p>No verdicts were recorded.</p>",
    ]
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


__all__ = ["render_html", "sparkline", "line_plot", "png_references", "esc"]
