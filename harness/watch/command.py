"""``harness watch [options] -- COMMAND ...``: the user's command run (no shell) as a process
group the harness owns (:class:`harness.process.OwnedProcess`), its output shown live (escaped)
and stored, its output (or the log it writes, ``--log``) judged as it trains, and the whole group
stopped on the first failing verdict (SIGTERM, SIGKILL after ``--grace``) unless
``--keep-going``. Its end writes report.json/md/html and the history row, as a pytest session.

Python commands are run with ``PYTHONUNBUFFERED=1``: through a pipe, Python would otherwise hold
its output back in blocks, and the verdicts with it.
"""
from __future__ import annotations

import os
import queue
import threading
from pathlib import Path
from typing import Optional

from harness.escape import terminal
from harness.logs import LogError
from harness.logs.bounds import MAX_LOG_BYTES
from harness.watch.follower import Follower, LineBuffer
from harness.watch.cli import say
from harness.watch.runner import Outcome, exit_status, publish, report_of, summary_lines
from harness.watch.watcher import Watch, stopped_text

WAKE_S = 0.2          # the longest the watch waits for output before looking at the log again
_END = object()


def watch_command(args, argv: list, settings) -> int:
    from harness.usage import CliError
    from harness.report import ReportsDirError, check_reports_dir

    reports = Path(args.reports_dir) if args.reports_dir is not None else Path("reports")
    try:
        check_reports_dir(reports)
    except ReportsDirError as exc:
        raise CliError(terminal(exc)) from None
    output = reports / "watch" / "output.log"
    output.parent.mkdir(parents=True, exist_ok=True)
    log = args.command_log
    try:
        watch = Watch(str(log if log is not None else output), settings, say)
    except LogError as exc:
        raise CliError(terminal(exc)) from None
    outcome = _run(watch, argv, output, log, args.grace)
    for line in summary_lines(watch, outcome):
        say(line)
    report = report_of(watch, outcome, {
        "watched": f"command {' '.join(argv)}"[:300], "command": list(argv),
        "output_log": str(output), "log": str(log) if log is not None else None,
        "profile": watch.ctx.book.profile, "expect": list(args.expect),
        "keep_going": bool(args.keep_going)})
    publish(report, reports, say)
    return exit_status(report)


def _run(watch: Watch, argv: list, output: Path, log: Optional[Path], grace: float) -> Outcome:
    from harness.usage import CliError
    from harness.process import OwnedProcess

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
        proc = OwnedProcess(argv, cwd=Path.cwd(), env=env)
    except OSError as exc:
        raise CliError(terminal(f"cannot start {argv[0]!r}: {exc.strerror or exc}")) from None
    outcome = Outcome("exited")
    say(f"watch: started {terminal(' '.join(argv))[:200]} (pid {proc.pid}, process group "
         f"{proc.pgid})")
    with proc, open(output, "wb") as sink:
        pieces: queue.Queue = queue.Queue()
        pump = threading.Thread(target=_pump, args=(proc, pieces), daemon=True)
        pump.start()
        follower = Follower(log, wait_for_file=True, note=watch.note) if log is not None else None
        try:
            _judge(watch, proc, pieces, sink, follower, outcome, grace)
        except KeyboardInterrupt:
            outcome.how = "interrupted"
            proc.stop(grace)
        finally:
            if follower is not None:
                follower.close()
        pump.join(timeout=grace + 10)
    outcome.exit_status = proc.returncode
    if outcome.how == "exited":
        watch.finish(run_over=proc.returncode == 0)
    return outcome


def _pump(proc, pieces: queue.Queue) -> None:
    """The command's output, piece by piece, into ``pieces`` (then the end marker)."""
    try:
        for piece in proc.lines():
            pieces.put(piece)
    except (OSError, ValueError):     # the pipe closed under it when the group was stopped
        pass
    finally:
        pieces.put(_END)


def _judge(watch: Watch, proc, pieces: queue.Queue, sink, follower, outcome: Outcome,
           grace: float) -> None:
    lines, written = LineBuffer(), 0
    while True:
        try:
            piece = pieces.get(timeout=WAKE_S)
        except queue.Empty:
            piece = None
        if piece is _END:
            break
        if piece is not None:
            if written + len(piece) <= MAX_LOG_BYTES:
                sink.write(piece)
                sink.flush()
                written += len(piece)
            for line in lines.split(piece):
                say(terminal(line))         # the command's own output, shown escaped
                if follower is None:
                    watch.feed(line)
        if follower is not None:
            _read_log(watch, follower)
        if watch.should_stop():
            outcome.how = "stopped"
            say(f"watch: stopping the command (SIGTERM to process group {proc.pgid}, "
                f"SIGKILL after {grace:g} s): {stopped_text(watch.record)}")
            proc.stop(grace)
            return
    if follower is not None:              # what the log got after the output ended
        _read_log(watch, follower)


def _read_log(watch: Watch, follower: Follower) -> None:
    """Every complete line the log holds now."""
    while True:
        got = follower.poll()
        if not got:
            return
        for line in got:
            watch.feed(line)
