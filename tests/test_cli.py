"""`harness inspect`: --json fields, the table, exit codes 0/1/2, usage errors in one line."""
import pytest
import json
import os

import torch

from fixtures.checkpoints import RunsCode, fresh_state
from harness.cli import main
from tests.forensics_support import trained_digits


def _run(capsys, *argv):
    code = main(["inspect", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_json_verdicts_for_the_done_when_files(tmp_path, capsys):
    trained, init = trained_digits(), fresh_state(0)
    torch.save({"state_dict": trained}, tmp_path / "trained.pth")
    torch.save({"state_dict": init}, tmp_path / "own_init.pth")
    torch.save({"module": {f"module.{k}": v for k, v in trained.items()}}, tmp_path / "dp.pth")
    nan = {k: v.clone() for k, v in trained.items()}
    nan["pos_embed"][0, 0, 0] = float("nan")
    torch.save(nan, tmp_path / "nan.pth")
    data = (tmp_path / "trained.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 3])
    sentinel = tmp_path / "ran"
    torch.save({"state_dict": init, "x": RunsCode(f"touch {sentinel}")}, tmp_path / "evil.pth")
    code, out, _ = _run(capsys, tmp_path, "--json")
    results = {os.path.basename(r["path"]): r for r in json.loads(out)}
    verdicts = {name: r["verdict"] for name, r in results.items()}
    assert verdicts == {"trained.pth": "trained", "own_init.pth": "random-init",
                        "dp.pth": "trained", "nan.pth": "non-finite", "cut.pth": "unreadable",
                        "evil.pth": "unsafe"}
    assert not sentinel.exists()
    assert results["evil.pth"]["blocked_global"] == "posix.system"
    assert results["dp.pth"]["stripped_prefixes"] == ["module."] and results["dp.pth"]["container"] == "module"
    first = results["trained.pth"]
    assert {"path", "verdict", "seconds", "groups"} <= set(first) and first["seconds"] > 0
    assert {"name", "verdict", "evidence"} <= set(first["groups"][0])
    assert "load_audit" not in first
    assert code == 1          # unsafe, unreadable and non-finite files fail


def test_exit_codes_and_table(tmp_path, capsys):
    torch.save({"state_dict": fresh_state(0)}, tmp_path / "plain_init.pth")
    code, out, _ = _run(capsys, tmp_path / "plain_init.pth")
    assert code == 0 and "random-init:" in out and "indistinguishable from init" in out
    torch.save({"state_dict": fresh_state(0)}, tmp_path / "vit_pretrained.pth.tar")
    code, out, _ = _run(capsys, tmp_path / "vit_pretrained.pth.tar", "--arch", "vit_tiny_digits")
    assert code == 1 and "FAIL" in out and "claims pretrained: named pretrained" in out
    assert "load audit:" in out


def test_usage_errors_exit_2_with_one_line(tmp_path, capsys):
    for argv, words in [((tmp_path / "missing.pth",), "no such file"),
                        ((tmp_path,), "no checkpoint files"),
                        ((tmp_path, "--arch", "not_a_model"), "unknown model"),
                        ((tmp_path, "--num-classes", "0"), "--num-classes")]:
        code, out, err = _run(capsys, *argv)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
