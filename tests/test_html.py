"""report.html: self-contained, failing rows first, plots inlined, hostile names shown as text;
rendered in a real headless Chromium."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.cli import main
from harness.expect import Expectation
from harness.record import EpochRecord, RunRecord, StateRecord
from harness.report import build_report
from harness.report.history import record_session
from harness.report.html import png_references, render_html
from harness import storage

HOSTILE_ID = "baseline/<script>document.title='pwned'</script>/accuracy"
HOSTILE_KEY = "blocks.0.attn.<script>alert(1)</script>.weight"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it: "
                             "apt-get install -y chromium)")


def _record(run_id: str) -> RunRecord:
    states = []
    for index, (accs, sparsity) in enumerate([([60.0, 85.0, 92.5], 0.0), ([88.0, 91.0], 20.0)]):
        epochs = [EpochRecord(epoch=e, train_loss=1.0 / (e + 1), train_accuracy=a, test_accuracy=a,
                              test_correct=int(a * 4), test_n=400) for e, a in enumerate(accs)]
        states.append(StateRecord(index=index, epochs=epochs, sparsity=sparsity, test_n=400,
                                  checkpoint=f"runs/{run_id}/state{index}.safetensors"))
    return RunRecord(run_id=run_id, source="engine", dataset="digits", num_classes=10,
                     model="vit_tiny_digits", spec={"seed": 0}, states=states,
                     init_audit={"missing": [HOSTILE_KEY]})


def _png(path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1.5), dpi=50)
    ax.plot([0, 1, 2], [90, 85, 80])
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def _session(reports: Path, accuracy_correct: int, finished: float) -> dict:
    ok = Expectation("baseline/digits/state0/accuracy", "State 0 accuracy on digits", ">=", 95.0, "%")
    hostile = Expectation(HOSTILE_ID, "State 0 of <b>hostile</b>", ">=", 95.0, "%")
    verdicts = [ok.evaluate_accuracy(352, 360, {"run_id": "r1"}),
                hostile.evaluate_accuracy(accuracy_correct, 360, {"checkpoint_key": HOSTILE_KEY})]
    report = build_report(profile="smoke", verdicts=verdicts, tests=[], records={"baseline/digits": _record("r1")},
                          environment={"git_commit": "abc123", "device": "cpu"}, started=finished - 3,
                          finished=finished, exit_status=1)
    report["runs"][0]["plots"] = ["pruning_curve.png", "missing_plot.png"]
    record_session(report, reports)
    return report


@pytest.fixture
def report_dir(tmp_path) -> Path:
    reports = tmp_path / "reports"
    latest = reports / "latest"
    latest.mkdir(parents=True)
    _png(latest / "pruning_curve.png")
    _session(reports, 350, 1000.0)
    report = _session(reports, 300, 2000.0)  # the hostile verdict regresses
    storage.write_json(latest / "report.json", report)
    return latest


def test_page_is_self_contained_and_escapes_every_report_string(report_dir):
    import json
    report = json.loads((report_dir / "report.json").read_text())
    page = render_html(report, report_dir)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in page
    assert "blocks.0.attn.&lt;script&gt;alert(1)&lt;/script&gt;.weight" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert page.count('src="data:image/png;base64,iVBORw0KGgo') == 1
    assert "missing_plot.png: not found" in page
    assert "Content-Security-Policy" in page and "default-src &#x27;none&#x27;" not in page


def test_png_references_walk_the_whole_report():
    report = {"runs": [{"plots": ["a.png", {"path": "b.PNG"}]}], "x": "a.png", "y": "c.pt"}
    assert png_references(report) == ["a.png", "b.PNG"]


def test_cli_renders_html_beside_the_report(report_dir, capsys):
    (report_dir / "report.html").unlink(missing_ok=True)
    assert main(["report", str(report_dir), "--html"]) == 0
    assert capsys.readouterr().out.strip() == str(report_dir / "report.html")
    assert "<table id=\"verdicts\">" in (report_dir / "report.html").read_text()


def test_cli_names_a_folder_without_a_report(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--html"]) == 2
    assert "no report.json there" in capsys.readouterr().err


def _dump_dom(page: Path, profile_dir: Path) -> str:
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile_dir}", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@needs_chromium
def test_chromium_renders_the_table_plots_and_hostile_names_as_text(report_dir, tmp_path):
    assert main(["report", str(report_dir), "--html", "--output", str(tmp_path / "page.html")]) == 0
    dom = _dump_dom(tmp_path / "page.html", tmp_path / "chromium-profile")
    assert '<table id="verdicts">' in dom
    rows = re.findall(r'<tr class="([^"]+)">', dom)  # only verdict rows carry a class
    assert rows == ["fail regression", "pass"]  # failing rows first
    assert "<script" not in dom.lower()  # no script element was created from a name
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom  # shown as text
    assert "blocks.0.attn.&lt;script&gt;alert(1)&lt;/script&gt;.weight" in dom
    assert "<title>harness report: FAILED (smoke)</title>" in dom
    assert dom.count("<svg") >= 4  # two sparklines, two per-state curves
    assert len(re.findall(r'<img alt="pruning_curve.png" src="data:image/png;base64,', dom)) == 1
