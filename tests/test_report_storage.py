"""The files behind every report and run (harness.storage): created with the umask's mode like a
plain open, and the temporaries of killed writes removed by the next write into their folder."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness import storage

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def umask():
    def set_mask(mask: int) -> None:
        os.umask(mask)
    old = os.umask(0o022)
    yield set_mask
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_every_writer_creates_files_with_the_umasks_mode(tmp_path, umask, mask, mode):
    """Issue 10 item 8: reports and runs were written 0600 whatever the umask (mkstemp)."""
    umask(mask)
    written = [storage.write_text(tmp_path / "a.md", "text"),
               storage.write_json(tmp_path / "a.json", {"a": 1}),
               storage.write_bytes(tmp_path / "a.bin", b"\x00"),
               storage.save_tensors(tmp_path / "a.safetensors", {"w": torch.ones(2)}, {"run": "x"}),
               storage.save_torch(tmp_path / "a.pt", {"w": torch.ones(2)})]
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in written} == {p.name: oct(mode) for p in written}


_WRITE_AND_HANG = """
import sys, time
from harness import storage

def write(tmp):
    with open(tmp, "w") as fh:
        fh.write("half a record")
    print("writing", flush=True)
    time.sleep(120)

storage._atomic(sys.argv[1], write)
"""


def _writer(target: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", _WRITE_AND_HANG, str(target)], env=env,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    return proc


def _temporaries(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_the_next_write_removes_the_temporaries_of_killed_writes_only(tmp_path):
    """Issue 10 item 14: temp files of killed writes stayed forever."""
    running = _writer(tmp_path / "state1.safetensors")
    killed = _writer(tmp_path / "record.json")
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    try:
        left = _temporaries(tmp_path)
        assert len(left) == 2 and any(n.startswith(".record.json.") for n in left)
        (tmp_path / ".notes.tmp").write_text("a user's file, not of the harness's naming")
        storage.write_text(tmp_path / "other.json", "{}")
        assert _temporaries(tmp_path) == sorted([".notes.tmp"] + [n for n in left if n.startswith(".state1.")])
    finally:
        running.kill()
        running.wait()
    assert not (tmp_path / "record.json").exists()   # the old file or the new one, never half


def test_a_temporary_of_another_host_is_removed_only_when_a_day_old(tmp_path):
    other_host = tmp_path / ".record.json.abcdef-1-0123abcd.tmp"
    other_host.write_text("x")
    storage.write_text(tmp_path / "a.json", "{}")
    assert other_host.exists()
    day = storage.STALE_AFTER_S + 60
    os.utime(other_host, (other_host.stat().st_atime - day, other_host.stat().st_mtime - day))
    storage.write_text(tmp_path / "a.json", "{}")
    assert not other_host.exists()
