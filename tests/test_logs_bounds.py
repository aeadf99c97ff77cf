"""Hostile logs (issue 10, items 9 and 11): each is read in bounded memory and time, or refused in
one line, and what was cut or refused is said. Memory and time are measured in a subprocess (peak
RSS, wall clock) under an address-space limit, against generous caps: the old parsers took ~550
bytes of memory per byte of a Namespace line and minutes (quadratic backtracking) on these lines."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fixtures.logs import (SEED_RUN, backtracking_lines, billion_laughs_yaml, long_namespace_log,
                           research_log, write_timm_folder)
from harness.cli import main
from harness.escape import dumps
from harness.logs import LogError, parse_log
from harness.logs.bounds import MAX_LOG_BYTES, MAX_LOG_LINES

ROOT = Path(__file__).resolve().parent.parent
ADDRESS_SPACE = 3 * 1024 ** 3   # the child's limit: a regression fails here, not the machine


def measure(body: str, timeout: float = 1800) -> dict:
    """Run ``body`` (which fills the dict ``out``) in a fresh interpreter; ``out`` comes back
    with the child's peak RSS (``peak_mb``: VmHWM, the high-water mark of its own memory; the
    getrusage maximum would also count the forking test process), the wall time of ``body``
    (``seconds``) and the CPU time it spent (``cpu_seconds``: what the tests bound, since a loaded
    machine stretches wall time, not the work done); ``timeout`` (wall) only stops a hang."""
    code = (f"import json, resource, time\n"
            f"resource.setrlimit(resource.RLIMIT_AS, ({ADDRESS_SPACE}, {ADDRESS_SPACE}))\n"
            f"out = {{}}\nstart, cpu_start = time.perf_counter(), time.process_time()\n"
            f"{textwrap.dedent(body)}\n"
            f"out['seconds'] = time.perf_counter() - start\n"
            f"out['cpu_seconds'] = time.process_time() - cpu_start\n"
            f"status = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
            f"out['peak_mb'] = int(status) / 1024\n"
            f"print(json.dumps(out))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {timeout} s (the cap); the input is not read in bounded time")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- item 9: memory and time ----------------------------------------------------------------
@pytest.mark.slow
def test_a_50_mb_namespace_line_is_read_in_bounded_memory_and_says_what_was_cut(tmp_path):
    path = tmp_path / "long.log"
    path.write_bytes(long_namespace_log(16_500_000))
    size_mb = path.stat().st_size / 2 ** 20
    assert size_mb > 47
    out = measure(f"""
        from harness.logs import parse_log
        record = parse_log({str(path)!r})
        args = record.spec["args"]
        out.update(dataset=args["dataset"], epochs=args["epochs"], lr=args["lr"],
                   kept=args["decreasing_lr"], cut=record.notes["arguments_cut"],
                   first=record.state(0).first_epoch_accuracy)
    """)
    # the arguments after the huge list are read; the list is kept as its head, and said so
    assert (out["dataset"], out["epochs"], out["lr"], out["first"]) == ("cifar10", 60, 0.01, 20.66)
    assert out["kept"].startswith("[1, 1, 1") and out["kept"].endswith("...") and len(out["kept"]) < 300
    assert len(out["cut"]) == 1 and out["cut"][0].startswith("decreasing_lr: a value of 49,500,00")
    # old parser: ~550 bytes per byte of line (27 GB here); now a few copies of the line at most
    assert out["peak_mb"] < 8 * size_mb, out
    assert out["cpu_seconds"] < 120, out


def test_lines_that_made_patterns_backtrack_are_read_in_linear_time(tmp_path):
    lines = backtracking_lines(200_000)   # 200k characters each; quadratic: minutes per line
    text = b"\n".join(lines) + b"\n"
    (tmp_path / "research.log").write_bytes(b"pruning state 0\n" + text)
    (tmp_path / "events.mllog").write_bytes(text)
    folder = write_timm_folder(SEED_RUN, tmp_path / "timm")
    (folder / "summary.csv").write_bytes((folder / "summary.csv").read_bytes() + text)
    (folder / "train.log").write_bytes(text + (folder / "train.log").read_bytes())
    out = measure(f"""
        from harness.logs import detect, parse_log
        root = {str(tmp_path)!r}
        out["detected"] = detect(root + "/research.log")
        out["research"] = parse_log(root + "/research.log", "research").notes["lines_not_understood"]
        out["mllog"] = parse_log(root + "/events.mllog", "mllog").notes["parse_problems"]
        timm = parse_log(root + "/timm")
        out["timm_first_batch"] = timm.state(0).first_batch_loss
        out["timm_epochs"] = len(timm.state(0).epochs)
    """)
    assert out["detected"] == "research"
    assert out["research"] >= 8   # read (and not understood), not hung on
    assert any("over the 65,536 an event is read up to" in p for p in out["mllog"])
    assert (out["timm_first_batch"], out["timm_epochs"]) == (2.33, 60)   # the real lines still read
    assert out["cpu_seconds"] < 60, out
    assert out["peak_mb"] < 500, out


def test_a_log_over_the_size_limit_is_refused_in_one_line(tmp_path, capsys):
    path = tmp_path / "huge.log"
    with open(path, "wb") as handle:            # sparse: 254 MB on paper, nothing on disk
        handle.truncate(254 * 10 ** 6)
    with pytest.raises(LogError) as err:
        parse_log(path)
    message = str(err.value)
    assert "254,000,000 bytes (242.2 MiB) is over the 64 MiB a training log may have" in message
    assert main(["log", str(path)]) == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and "over the 64 MiB" in stderr
    assert MAX_LOG_BYTES == 64 * 2 ** 20


def test_a_log_of_too_many_lines_is_refused_and_a_fifo_is_not_waited_on(tmp_path):
    path = tmp_path / "blank.log"
    path.write_bytes(b"\n" * (MAX_LOG_LINES + 1))   # 4 MB: small, but millions of lines
    with pytest.raises(LogError, match=f"{MAX_LOG_LINES + 1:,} lines, over the {MAX_LOG_LINES:,}"):
        parse_log(path, "research")
    fifo = tmp_path / "pipe.log"
    os.mkfifo(fifo)   # no writer: a read would block for ever
    with pytest.raises(LogError, match="not a regular file"):
        parse_log(fifo, "research")


@pytest.mark.slow
def test_lines_are_decoded_one_at_a_time(tmp_path):
    """Millions of short lines cost the bytes of the log, not ~100 bytes of objects per line."""
    path = tmp_path / "short.log"
    path.write_bytes(b"pruning state 0\n" + b"x\n" * 1_500_000)
    out = measure(f"""
        from harness.logs import parse_log
        record = parse_log({str(path)!r}, "research")
        out["total"] = record.notes["lines_total"]
    """)
    assert out["total"] == 1_500_001
    assert out["peak_mb"] < 100, out   # a tuple of (number, text) per line: 193 MB (measured)


def test_an_args_yaml_alias_bomb_is_refused_and_never_expanded(tmp_path):
    folder = write_timm_folder(SEED_RUN, tmp_path / "run")
    bomb = billion_laughs_yaml()
    assert len(bomb) < 400           # stands for 10**9 strings once copied out
    (folder / "args.yaml").write_text(bomb)
    out = measure(f"""
        from harness.escape import dumps
        from harness.logs import parse_log
        record = parse_log({str(folder)!r})
        out["note"] = record.notes["args_yaml"]
        out["args"] = record.spec["args"]
        out["json_bytes"] = len(dumps(record.to_dict()))
    """)
    assert out["note"] == ("args.yaml refused: its YAML aliases expand to over 10,000 values: "
                           "no run arguments")
    assert out["args"] == {} and out["json_bytes"] < 100_000
    assert out["peak_mb"] < 300, out


def test_an_args_yaml_with_a_few_aliases_is_still_read(tmp_path):
    folder = write_timm_folder(SEED_RUN, tmp_path / "run")
    text = (folder / "args.yaml").read_text()
    (folder / "args.yaml").write_text(text + "mean: &m [0.5, 0.5, 0.5]\nstd: *m\n")
    record = parse_log(folder)
    assert record.spec["args"]["std"] == [0.5, 0.5, 0.5] and record.notes["args_yaml"].endswith("args.yaml")
    assert record.spec["recipe"]["epochs"] == 60


# --- item 11: links inside a timm output folder -----------------------------------------------
SECRET = "secret-token-0123"


def _outside(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / "elsewhere" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_a_linked_summary_csv_is_refused_and_not_quoted(tmp_path, capsys):
    folder = write_timm_folder(SEED_RUN, tmp_path / "run")
    target = _outside(tmp_path, "notes.csv", f"epoch,{SECRET}\n" + (folder / "summary.csv").read_text())
    (folder / "summary.csv").unlink()
    (folder / "summary.csv").symlink_to(target)
    with pytest.raises(LogError, match="summary.csv is a symbolic link .*not followed") as err:
        parse_log(folder)
    assert SECRET not in str(err.value)
    assert main(["log", str(folder / "summary.csv")]) == 2
    captured = capsys.readouterr()
    assert "symbolic link" in captured.err and SECRET not in captured.err + captured.out


def test_linked_args_yaml_and_console_log_are_refused_and_said(tmp_path):
    folder = write_timm_folder(SEED_RUN, tmp_path / "run")
    (folder / "args.yaml").unlink()
    (folder / "args.yaml").symlink_to(_outside(tmp_path, "args.yaml", f"model: {SECRET}\nepochs: 60\n"))
    console = (folder / "train.log").read_text()
    (folder / "train.log").unlink()
    (folder / "train.log").symlink_to(_outside(tmp_path, "console.log", f"{SECRET}\n" + console))
    os.mkfifo(folder / "pipe.txt")   # a FIFO named like a console log: never opened
    record = parse_log(folder)
    assert record.spec["args"] == {} and record.state(0).first_batch_loss is None
    refused = record.notes["refused_files"]
    assert [r.split(" ")[0] for r in refused] == ["args.yaml", "pipe.txt", "train.log"]
    assert "symbolic link" in refused[0] and "not a regular file" in refused[1]
    assert SECRET not in dumps(record.to_dict())
    assert len(record.state(0).epochs) == 60   # the regular summary.csv is still read


def test_a_research_log_named_directly_may_be_a_link(tmp_path):
    """The user names that file: following it is theirs to choose (only links inside a folder
    from elsewhere are refused)."""
    target = tmp_path / "real.log"
    target.write_text(research_log(SEED_RUN))
    (tmp_path / "link.log").symlink_to(target)
    assert parse_log(tmp_path / "link.log").state(0).best_accuracy == 74.12
