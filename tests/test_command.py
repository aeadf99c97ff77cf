"""harness.command on real child processes: what a hostile or runaway command prints is stored
whole but held in bounded memory, a command that never ends is killed at its timeout with one
line, its log goes through the bounded log readers, and its output reaches the terminal and the
report escaped."""
import json
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from harness.command import MAX_OUTPUT_BYTES, SHOWN_CHARS, CommandFailed, CommandSpec, execute
from harness.process import OwnedProcess, group_members

MB = 1 << 20
DEADLINE_S = 120     # generous: the bugs these tests name wait 3600 s


def _peak_in_child(body: str, tmp_path: Path) -> dict:
    """Run ``body`` (which sets ``result``) in a fresh interpreter; its result and how much its
    peak resident memory grew while ``body`` ran (ru_maxrss, this process only, not its child)."""
    script = textwrap.dedent("""
        import json, resource, sys
        from pathlib import Path
        import harness.command, harness.runs, harness.logs, harness.environment, torch
        tmp = Path(sys.argv[1])
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result = {}
        """) + textwrap.dedent(body) + textwrap.dedent("""
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(json.dumps({"grown_mib": grown / 1024, **result}))
        """)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_100_mb_line_without_newline_is_stored_whole_in_bounded_memory(tmp_path):
    """readline() without a size held the whole 100 MB line (and its decoded copy) in memory."""
    found = _peak_in_child("""
        from harness.command import CommandSpec, execute
        child = ("import sys\\nfor _ in range(100): sys.stdout.write('x' * (1 << 20))\\n"
                 "print()\\nfor i in range(50000): print('step', i)\\nprint('last')\\n")
        tail = execute(CommandSpec(argv=(sys.executable, "-c", child)), tmp, tmp / "output.log").tail
        with open(tmp / "output.log", "rb") as log:
            head = log.read(1 << 20)
            log.seek(-200, 2)
            end = log.read().decode()
        result = {"tail": tail, "size": (tmp / "output.log").stat().st_size,
                  "head_is_x": head == b"x" * (1 << 20), "end": end}
        """, tmp_path)
    assert found["grown_mib"] < 40, found["grown_mib"]
    printed = 100 * MB + 1 + len("".join(f"step {i}\n" for i in range(50000))) + len("last\n")
    note = f"\n[harness: output.log keeps the first 64 MiB of the {printed} bytes the command printed]\n"
    assert found["head_is_x"] and found["end"].endswith("x" * 50 + note)   # the head, then the note
    assert found["size"] == MAX_OUTPUT_BYTES + len(note)
    assert found["tail"][-1] == "last" and len(found["tail"]) == 20


def test_each_line_kept_and_shown_is_cut_and_says_so(tmp_path):
    shown = []
    tail = execute(CommandSpec(argv=(sys.executable, "-c", "print('y' * 200000); print('ok')")),
                   tmp_path, tmp_path / "output.log", shown.append).tail
    assert shown == ["y" * SHOWN_CHARS + " [line cut]", "ok"] and tail == shown
    assert (tmp_path / "output.log").read_bytes() == b"y" * 200000 + b"\nok\n"


def test_an_unreadable_log_is_reported_without_reading_the_output_again(tmp_path):
    """The log-cannot-be-read record quoted the output's last lines by reading the whole output
    file into memory (300 MB here: more than the 64 MiB log readers accept)."""
    found = _peak_in_child("""
        import torch
        from harness.command import CommandSpec, get_or_run_command
        from harness.runs import RunContext
        child = ("import sys\\nline = b'n' * 1023 + b'\\\\n'\\n"
                 "for _ in range(300 * 1024): sys.stdout.buffer.write(line)\\nprint('end')\\n")
        context = RunContext(device=torch.device("cpu"), reports_dir=tmp / "reports")
        record = get_or_run_command(CommandSpec(argv=(sys.executable, "-c", child)), context, tmp)
        result = {"message": record.notes["log_unread"], "tail": record.notes["last_output_lines"],
                  "cut": record.notes["output_cut"]}
        """, tmp_path)
    printed = 300 * MB + len("end\n")
    assert found["message"].endswith(
        f"output.log: not read as the log: output.log keeps the first 64 MiB of the {printed} bytes "
        f"the command printed; write the training log to a file and name it in CommandSpec.log")
    assert found["cut"] == f"output.log keeps the first 64 MiB of the {printed} bytes the command printed"
    assert found["tail"][-1] == "end" and len(found["tail"]) == 20
    assert found["grown_mib"] < 60, found["grown_mib"]


def _in_thread(call):
    """``call()``'s result or exception, run in a thread; fails (not hangs) when it has not
    ended within DEADLINE_S."""
    done: dict = {}

    def target():
        try:
            done["result"] = call()
        except BaseException as exc:     # handed to the test as it is
            done["error"] = exc
    runner = threading.Thread(target=target, daemon=True)
    runner.start()
    runner.join(DEADLINE_S)
    assert not runner.is_alive(), f"still running after {DEADLINE_S} s"
    if "error" in done:
        raise done["error"]
    return done["result"]


def test_a_command_that_never_ends_is_killed_at_its_timeout_with_one_line(tmp_path):
    """The child and the grandchild holding its output open are both killed (one process group)."""
    child = ("import os, subprocess, sys, time\nprint(os.getpgid(0), flush=True)\n"
             "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)'])\n"
             "time.sleep(3600)\n")
    with pytest.raises(CommandFailed) as failed:
        # 10 s: even a loaded machine starts python and prints the pgid before the timeout
        _in_thread(lambda: execute(CommandSpec(argv=(sys.executable, "-c", child), timeout=10),
                                   tmp_path, tmp_path / "output.log"))
    message = str(failed.value)
    assert "\n" not in message and message.endswith("ran past its timeout of 10 s and was killed")
    assert failed.value.status == -signal.SIGTERM and len(failed.value.tail) == 1
    assert group_members(int(failed.value.tail[0])) == []


def test_a_background_process_holding_the_output_ends_with_the_run(tmp_path):
    """`sh -c 'sleep 3600 & echo $$'` with a 5 s timeout: the shell exits at once and its sleep
    holds the output open; reading to its end ran until the sleep ended (the timeout's kill did
    nothing once the shell had exited), and the sleep outlived the run."""
    spec = CommandSpec(argv=("sh", "-c", "sleep 3600 & echo $$"), timeout=5)
    ran = _in_thread(lambda: execute(spec, tmp_path, tmp_path / "output.log"))
    pgid = int(ran.tail[0])
    assert ran.tail == [str(pgid)] and group_members(pgid) == []


@pytest.mark.parametrize("pattern", ["/etc/*", "../*.pth", "ckpt/../../*.pt", "C:/x/*.pt", "a\\..\\..\\b", ""])
def test_a_checkpoints_glob_outside_the_working_folder_is_refused_before_anything_runs(pattern, tmp_path):
    """An absolute or climbing glob was refused only after the command ran (the glob raised while
    the run's notes were made), so the run was discarded and ran again every session."""
    argv = (sys.executable, "-c", "open('ran', 'w').close()")
    with pytest.raises(ValueError) as refused:
        CommandSpec(argv=argv, checkpoints=["ok/*.pt", pattern])
    assert str(refused.value) == ("CommandSpec.checkpoints must hold globs relative to cwd that stay "
                                  f"inside it (not absolute, no '..'), got {pattern!r}")
    assert CommandSpec(argv=argv, checkpoints=["ok/**/*.pt", "./last.pt"]).checkpoints == (
        "ok/**/*.pt", "./last.pt")


def test_arguments_and_environment_reach_the_command_verbatim_through_no_shell(tmp_path):
    hostile = "$(touch pwned); `touch pwned2` | rm -rf x ; echo"
    spec = CommandSpec(argv=(sys.executable, "-c", "import os, sys; print(sys.argv[1]); "
                             "open('env.txt', 'w').write(os.environ['HOSTILE'])", hostile),
                       env={"HOSTILE": hostile + " env"})
    execute(spec, tmp_path, tmp_path / "output.log")
    assert (tmp_path / "output.log").read_text() == f"{hostile}\n"
    assert (tmp_path / "env.txt").read_text() == hostile + " env"   # printed, it would be redacted
    assert not list(tmp_path.glob("pwned*"))
    with pytest.raises(ValueError, match="CommandSpec.argv must be a list of strings"):
        CommandSpec(argv="python train.py; rm -rf /")


@pytest.mark.slow
def test_escape_sequences_a_command_prints_reach_no_terminal_or_report_raw(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\naddopts = '-p no:cacheprovider'\n")
    (tmp_path / "evil.py").write_text(
        "print('\\x1b[2J\\x1b[32mPASS\\x1b[0m <script>x</script> | `a`')\nraise SystemExit(2)\n")
    (tmp_path / "test_cmd.py").write_text(
        "import sys\nfrom harness.suite import Case, CommandSpec\n"
        "HARNESS_CASES = [Case('evil', CommandSpec(argv=(sys.executable, 'evil.py')))]\n"
        "def test_run(harness, case):\n    harness.run(case)\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 1 and "exited with status 2" in done.stdout
    assert "  | \\x1b[2J\\x1b[32mPASS\\x1b[0m" in done.stdout and "\x1b[2J" not in done.stdout
    latest = tmp_path / "reports" / "latest"
    markdown, page = (latest / "report.md").read_text(), (latest / "report.html").read_text()
    assert "\x1b" not in markdown + page and "<script>x" not in page
    assert re.search(r"(?<!\\)<script>", markdown) is None     # markdown: only as \<script> (text)
    assert "\\<script>x" in markdown
    assert "\\\\x1b\\[2J" in markdown and "&lt;script&gt;" in page


def test_a_command_that_ended_before_its_timer_fired_is_not_reported_as_timed_out(capfd):
    """The timeout passes after the command has ended on its own but before its output's end was
    read: nothing is killed, no traceback, not a timeout."""
    for _ in range(5):
        with OwnedProcess([sys.executable, "-c", "print('done')"]) as proc:
            while not proc.exited():
                time.sleep(0.01)
            time.sleep(0.01)
            assert list(proc.lines(timeout=0.001)) == [b"done\n"]
        assert proc.timed_out is False and proc.returncode == 0
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.slow
def test_ctrl_c_to_pytest_ends_the_commands_whole_process_group(tmp_path):
    """SIGINT (Ctrl-C) to a pytest session running a command: pytest exited and the command (in
    its own session, so the terminal's SIGINT never reaches it) and its child kept running."""
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\naddopts = '-p no:cacheprovider'\n")
    (tmp_path / "train.py").write_text(
        "import os, subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)'])\n"
        "open('pgid.tmp', 'w').write(str(os.getpgid(0)))\nos.replace('pgid.tmp', 'pgid')\n"
        "print('training', flush=True)\ntime.sleep(3600)\n")
    (tmp_path / "test_cmd.py").write_text(
        "import sys\nfrom harness.suite import Case, CommandSpec\n"
        "HARNESS_CASES = [Case('long', CommandSpec(argv=(sys.executable, 'train.py')))]\n"
        "def test_run(harness, case):\n    harness.run(case)\n")
    with open(tmp_path / "session.out", "wb") as out:
        session = subprocess.Popen([sys.executable, "-m", "pytest", "-q"], cwd=tmp_path, stdout=out,
                                   stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 600       # pytest and torch start on a loaded machine
            while not (tmp_path / "pgid").exists():
                assert session.poll() is None, (tmp_path / "session.out").read_text()[-3000:]
                assert time.monotonic() < deadline, "the command did not start"
                time.sleep(0.2)
            pgid = int((tmp_path / "pgid").read_text())
            assert len(group_members(pgid)) == 2          # the command and its child
            session.send_signal(signal.SIGINT)
            status = session.wait(DEADLINE_S)
        finally:
            session.kill()
            session.wait()
    assert status == 2, (tmp_path / "session.out").read_text()[-3000:]     # pytest: interrupted
    assert group_members(pgid) == []


def test_a_checkpoint_the_glob_finds_that_links_outside_the_working_folder_is_named_not_read(tmp_path):
    import torch

    from harness.command import get_or_run_command
    from harness.runs import RunContext

    work, outside = tmp_path / "work", tmp_path / "outside.pt"
    work.mkdir()
    outside.write_bytes(b"not the run's")
    make = ("import os; os.makedirs('ckpt'); open('ckpt/a.pt', 'wb').write(b'weights'); "
            f"os.symlink({str(outside)!r}, 'ckpt/b.pt')")
    spec = CommandSpec(argv=(sys.executable, "-c", make), checkpoints=["ckpt/*.pt"])
    context = RunContext(device=torch.device("cpu"), reports_dir=tmp_path / "reports", progress=False)
    notes = get_or_run_command(spec, context, work).notes
    assert list(notes["checkpoints"]) == ["ckpt/a.pt"]
    assert notes["checkpoints_outside"] == ["ckpt/b.pt: a link to a file outside cwd, not read"]
