"""report.html: self-contained, failing rows first with their cause, only the session's own plots
inlined, hostile names shown as text, null evidence left out; rendered in a real headless
Chromium, where the page fits a 1,400 px window."""
import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import storage
from harness.cli import main
from harness.expect import Expectation
from harness.record import EpochRecord, RunRecord, StateRecord
from harness.report import build_report
from harness.report.history import record_session
from harness.report.html import render_html

HOSTILE_ID = "baseline/<script>document.title='pwned'</script>/accuracy"
HOSTILE_KEY = "blocks.0.attn.<script>alert(1)</script>.weight"
CAUSE = "the recipe is too short: 3 epochs reach at most 92.50% on this data"
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


def _png(path: Path, values=(90, 85, 80)) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(2, 1.5), dpi=50)
    ax.plot([0, 1, 2], list(values))
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def _long_evidence() -> dict:
    """Evidence as the suites write it: long lists, a long path without spaces, a null."""
    return {"intra_epoch_curve": [[s, 400, 2.3026 - s / 1000, 10.0 + s / 10] for s in range(0, 400, 8)],
            "init": "/very/long/" + "nested_folder_name/" * 12 + "vit_small_cifar10_pretrained_init.pth.tar",
            "ln_num_classes": None, "note": CAUSE, "run_id": "r1"}


def _session(reports: Path, accuracy_correct: int, finished: float) -> dict:
    ok = Expectation("baseline/digits/state0/accuracy", "State 0 accuracy on digits", ">=", 95.0, "%")
    hostile = Expectation(HOSTILE_ID, "State 0 of <b>hostile</b>", ">=", 95.0, "%")
    verdicts = [ok.evaluate_accuracy(352, 360, {"run_id": "r1"}),
                hostile.evaluate_accuracy(accuracy_correct, 360,
                                          {"checkpoint_key": HOSTILE_KEY, **_long_evidence()})]
    report = build_report(profile="smoke", verdicts=verdicts, tests=[], records={"baseline/digits": _record("r1")},
                          environment={"git_commit": "abc123", "device": "cpu"}, started=finished - 3,
                          finished=finished, exit_status=1)
    report["plots"] = {"pruning/curve": "plots/pruning_curve.png", "pruning/missing": "plots/missing_plot.png"}
    record_session(report, reports)
    return report


@pytest.fixture
def report_dir(tmp_path) -> Path:
    reports = tmp_path / "reports"
    latest = reports / "latest"
    _png(latest / "plots" / "pruning_curve.png")
    _session(reports, 350, 1000.0)
    report = _session(reports, 300, 2000.0)  # the hostile verdict regresses
    storage.write_text(latest / "report.json", json.dumps(report))
    return latest


def test_page_is_self_contained_and_escapes_every_report_string(report_dir):
    report = json.loads((report_dir / "report.json").read_text())
    page = render_html(report, report_dir)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in page
    assert "blocks.0.attn.&lt;script&gt;alert(1)&lt;/script&gt;.weight" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert page.count('src="data:image/png;base64,iVBORw0KGgo') == 1
    assert "pruning/missing: not found" in page
    assert "Content-Security-Policy" in page and "default-src &#x27;none&#x27;" not in page


def test_a_failing_gap_shows_its_cause_and_null_evidence_is_left_out(report_dir):
    page = render_html(json.loads((report_dir / "report.json").read_text()), report_dir)
    (failing,) = re.findall(r'<tr class="fail regression">.*?</tr>\n?', page, flags=re.S)[:1]
    gap_cell = re.search(r'<td class="gap">(.*?)</td>', failing).group(1)
    assert "-11.67 pp" in gap_cell and f'<div class="why">{CAUSE}</div>' in gap_cell
    passing = page[page.index('<tr class="pass">'):]
    assert '<div class="why">' not in passing.split("</tr>")[0]  # a passing verdict shows no cause
    assert "ln_num_classes" not in page and ">null<" not in page


def test_only_the_plots_the_session_wrote_are_inlined(tmp_path):
    """A log argument ``init='/any/file.png'`` (any string ending in .png) must not copy a local
    file into the page; neither may a plots entry that leaves the folder or a symlinked plot."""
    secret = _png(tmp_path / "outside" / "secret.png", values=(1, 7, 3))
    secret_b64 = base64.b64encode(secret.read_bytes()).decode()
    latest = tmp_path / "reports" / "latest"
    own = _png(latest / "plots" / "own.png")
    (latest / "plots" / "link.png").symlink_to(secret)
    _png(latest / "stray.png")  # a PNG lying in the folder that no session listed
    run = _record("log-1")
    run.init = str(secret)
    verdict = Expectation("a/acc", "A", ">=", 95.0, "%").evaluate(96.0, {"path": str(secret),
                                                                         "init": str(secret)})
    report = build_report(profile="smoke", verdicts=[verdict], tests=[], records={"a": run},
                          environment={}, started=0.0, finished=1.0, exit_status=0)
    report["plots"] = {"own": "plots/own.png", "link": "plots/link.png",
                       "escape": "plots/../../outside/secret.png", "absolute": str(secret)}
    page = render_html(report, latest)
    assert page.count("data:image/png;base64,") == 1
    assert base64.b64encode(own.read_bytes()).decode() in page
    assert secret_b64 not in page
    assert "link: not a regular file inside the report folder, not inlined" in page
    assert "escape: plots/../../outside/secret.png is not a file under plots/, not inlined" in page
    assert f"absolute: {secret} is not a file under plots/, not inlined" in page


def test_cli_renders_html_beside_the_report(report_dir, capsys):
    (report_dir / "report.html").unlink(missing_ok=True)
    assert main(["report", str(report_dir), "--html"]) == 0
    assert capsys.readouterr().out.strip() == str(report_dir / "report.html")
    assert "<table id=\"verdicts\">" in (report_dir / "report.html").read_text()


def test_cli_names_a_folder_without_a_report(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--html"]) == 2
    assert "no report.json there" in capsys.readouterr().err


def _chromium(page: Path, profile_dir: Path, *extra: str) -> str:
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile_dir}", *extra, "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@needs_chromium
def test_chromium_renders_the_table_plots_and_hostile_names_as_text(report_dir, tmp_path):
    assert main(["report", str(report_dir), "--html", "--output", str(tmp_path / "page.html")]) == 0
    dom = _chromium(tmp_path / "page.html", tmp_path / "chromium-profile")
    assert '<table id="verdicts">' in dom
    rows = re.findall(r'<tr class="([^"]+)">', dom)  # only verdict rows carry a class
    assert rows == ["fail regression", "pass"]  # failing rows first
    assert "<script" not in dom.lower()  # no script element was created from a name
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom  # shown as text
    assert "blocks.0.attn.&lt;script&gt;alert(1)&lt;/script&gt;.weight" in dom
    assert "<title>harness report: FAILED (smoke)</title>" in dom
    assert dom.count("<svg") >= 4  # two sparklines, two per-state curves
    assert len(re.findall(r'<img alt="pruning/curve" src="data:image/png;base64,', dom)) == 1


_MEASURE = ("<script>document.title = 'width ' + document.documentElement.scrollWidth + ' of ' + "
            "window.innerWidth;</script></body>")


@needs_chromium
def test_the_page_fits_a_1400_px_window_with_the_evidence_open(report_dir, tmp_path):
    """Long evidence (a 50-step curve, a 250-character path) wraps inside its cell: the page is no
    wider than the window. The copy measured opens every <details> and lets a script report the
    width (the real page's policy forbids scripts)."""
    page = render_html(json.loads((report_dir / "report.json").read_text()), report_dir)
    page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
    page = page.replace("<details>", "<details open>").replace("</body>", _MEASURE)
    (tmp_path / "measure.html").write_text(page)
    dom = _chromium(tmp_path / "measure.html", tmp_path / "chromium-profile", "--window-size=1400,900")
    width, window = map(int, re.search(r"<title>width (\d+) of (\d+)</title>", dom).groups())
    assert window == 1400
    assert width <= window, f"the page is {width} px wide in a {window} px window"



_HEADERS = ("<script>var th = document.querySelectorAll('#verdicts > tbody > tr:first-child > th'); "
            "var lines = []; for (var i = 0; i < th.length; i++) { var r = document.createRange(); "
            "r.selectNodeContents(th[i]); lines.push(th[i].textContent + '=' + r.getClientRects().length); }"
            "document.title = 'lines ' + lines.join(',');</script></body>")


@needs_chromium
def test_no_verdict_column_header_is_broken_inside_a_word(report_dir, tmp_path):
    """'observed' was drawn as 'observe' over 'd' in its narrow column (a 1400 px window)."""
    page = render_html(json.loads((report_dir / "report.json").read_text()), report_dir)
    page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
    (tmp_path / "headers.html").write_text(page.replace("</body>", _HEADERS))
    dom = _chromium(tmp_path / "headers.html", tmp_path / "chromium-profile", "--window-size=1400,900")
    found = re.search(r"<title>lines ([^<]*)</title>", dom).group(1).split(",")
    lines = {text: int(n) for text, n in (item.split("=") for item in found)}
    assert lines["observed"] == 1
    assert all(n == 1 for text, n in lines.items() if " " not in text), lines   # one word, one line
