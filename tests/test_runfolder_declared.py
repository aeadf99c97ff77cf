"""Another lab's pruning run, judged through a declared layout: a small BatchNorm CNN pruned for
real with ``torch.nn.utils.prune.global_unstructured`` (weights rewound to the init after each
cut, a few real SGD steps per state), saved as ``state{k}_checkpoint.pth.tar`` with a ``log.txt``
in the lab's own words, whose state 3 lies (its checkpoint is dense, its log says pruned).
Judged by ``open_folder``, by ``pytest suites/pruning --harness-from-run`` with the layout in the
ini file or on the command line, and by ``harness log DIR --layout ... --checks``."""
import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune

from harness.cli import main
from harness.runfolder import Finding, NotJudged, RunFolderError, open_folder
from harness.runfolder.declaration import layout_from_lines
from harness.runfolder.layout import find_layout

ROOT = Path(__file__).resolve().parent.parent
RATE, STATES, LIE = 0.3, 3, 3
CLAIM = "^run: method=(?P<method>\\S+) scope=(?P<scope>\\S+) rate=(?P<rate>[\\d.]+) states=(?P<states>\\d+)"
REMAINING = "^state (?P<state>\\d+): remaining (?P<remaining>[\\d.]+)% of weights"
LAYOUT = ["checkpoint: state{k}_checkpoint.pth.tar", "log: log.txt", f"remaining: {REMAINING}",
          f"claim: {CLAIM}", "method: imp", "nested: yes", "init: init.pth.tar", "rewind: init"]


class LabCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(16, 10)

    def forward(self, x):
        return self.classifier(self.features(x))


PRUNED = (("features.0", 0), ("features.3", 3))


def _train(model: nn.Module, seed: int) -> None:
    """A few real SGD steps on a fixed random batch (no momentum, no weight decay: the pruned
    entries of weight_orig, which get no gradient, keep the value they were rewound to)."""
    generator = torch.Generator().manual_seed(seed)
    x, y = torch.randn(32, 3, 8, 8, generator=generator), torch.randint(0, 10, (32,), generator=generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model.train()
    for _ in range(3):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def _remaining(model: nn.Module) -> float:
    modules = [model.features[0], model.features[3], model.classifier]
    masks = [getattr(m, "weight_mask", torch.ones_like(m.weight)) for m in modules]
    return 100.0 * sum(float(m.sum()) for m in masks) / sum(m.numel() for m in masks)


def lab_run(folder: Path) -> Path:
    """The lab's script: dense state 0, then per state a global L1 cut of RATE of the remaining
    weights, weights rewound to the init, trained, saved; state LIE saves a dense model and logs
    the sparsity it should have had."""
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    model = LabCNN()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save(init, folder / "init.pth.tar")
    log = [f"run: method=imp scope=global rate={RATE} states={STATES}", "epoch 0 loss 2.31"]
    _train(model, 0)
    torch.save({"state_dict": model.state_dict(), "epoch": 0}, folder / "state0_checkpoint.pth.tar")
    log.append(f"state 0: remaining {_remaining(model):.2f}% of weights")
    targets = [(model.features[0], "weight"), (model.features[3], "weight"), (model.classifier, "weight")]
    for k in range(1, STATES + 1):
        if k == LIE:
            dense = LabCNN()
            dense.load_state_dict(init)
            _train(dense, k)
            torch.save({"state_dict": dense.state_dict(), "epoch": k}, folder / f"state{k}_checkpoint.pth.tar")
            log.append(f"state {k}: remaining {100 * (1 - RATE) ** k:.2f}% of weights")
            continue
        prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=RATE)
        with torch.no_grad():                            # rewind the kept weights to the init
            for module, name in zip((model.features[0], model.features[3], model.classifier),
                                    ("features.0", "features.3", "classifier")):
                module.weight_orig.copy_(init[f"{name}.weight"])
        _train(model, k)
        torch.save({"state_dict": model.state_dict(), "epoch": k}, folder / f"state{k}_checkpoint.pth.tar")
        log.append(f"state {k}: remaining {_remaining(model):.2f}% of weights")
    (folder / "log.txt").write_text("\n".join(log) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Path:
    return lab_run(tmp_path_factory.mktemp("lab") / "run")


def _by_state(run, check: str) -> dict:
    return {o.state: o for o in run.outcomes(check)}


def test_the_lab_folder_is_refused_undeclared_and_the_message_says_how_to_declare(lab):
    with pytest.raises(RunFolderError, match=r"no \{k\}checkpoint.pth.tar or \{k\}model_SA_best.pth.tar "
                                             r"or state<k>.json in it .*harness_run_layout"):
        find_layout(lab)


def test_a_torch_pruned_state_is_read_as_weight_orig_times_mask(lab):
    run = open_folder(lab, layout=layout_from_lines(LAYOUT, "test"))
    stored = run.stored(1)
    assert stored.names == ["features.0.weight", "features.3.weight", "classifier.weight"]
    assert stored.form == "weight_orig/weight_mask pairs for all 3 prunable weights"
    raw = torch.load(lab / "state1_checkpoint.pth.tar", weights_only=True)["state_dict"]
    orig, mask = raw["features.3.weight_orig"], raw["features.3.weight_mask"]
    assert torch.equal(stored.weights["features.3.weight"], orig * mask)
    assert torch.equal(stored.masks["features.3.weight"], mask != 0)
    assert stored.sparsity == pytest.approx(30.0, abs=0.05)       # 458 of 1,528 weights
    assert run.stored(0).form == "plain weights (no weight_mask)"


def test_the_lying_state_fails_three_ways_and_the_honest_states_pass(lab):
    run = open_folder(lab, layout=layout_from_lines(LAYOUT, "test"))
    assert (run.claims.method, run.claims.scope, run.claims.rate, run.claims.states) == ("imp", "global", 0.3, 3)
    for check in ("sparsity", "log_consistency"):
        found = _by_state(run, check)
        assert [found[k].verdict().passed for k in range(4)] == [True, True, True, False], check
    nesting = _by_state(run, "nesting")
    assert [nesting[k].verdict().passed for k in (1, 2, 3)] == [True, True, False]
    assert nesting[3].observed == pytest.approx(1528 * (1 - 0.7 * 0.7), abs=2)   # state 2's cut, alive
    assert "state3_checkpoint.pth.tar (plain weights (no weight_mask)) holds 779 weights " \
           "state2_checkpoint.pth.tar had pruned: features.3.weight" in nesting[3].verdict().line()
    for check in ("trained", "rewind"):
        found = _by_state(run, check)
        assert all(isinstance(o, Finding) and o.verdict().passed for k, o in found.items()
                   if k < LIE), check
    lie = _by_state(run, "sparsity")[3].verdict()
    assert lie.observed == 0.0 and lie.threshold == pytest.approx(65.7)
    assert "state3_checkpoint.pth.tar (plain weights (no weight_mask))" in lie.line()
    logged = _by_state(run, "log_consistency")[3].verdict().line()
    assert "log line 6: state 3: remaining 34.30% of weights (34.30% remaining)" in logged
    claim_from = lie.evidence["claim_from"]
    assert claim_from["method"] == "declared in test" and claim_from["nested"] == "declared in test"
    assert claim_from["rate"] == claim_from["states"] == "log line 1"
    assert isinstance(_by_state(run, "reported_accuracy")[0], NotJudged)


def test_a_declared_final_sparsity_sets_the_bar_of_each_state(lab):
    layout = layout_from_lines(["checkpoint=state{k}_checkpoint.pth.tar", "method=lth",
                                "final_sparsity=65.7%", "states=3", "scope=layer-wise"], "--layout")
    run = open_folder(lab, layout=layout)
    sparsity = _by_state(run, "sparsity")
    assert sparsity[2].expectation.threshold == pytest.approx(51.0)
    assert sparsity[2].verdict().id == "pruning/lth/state2/sparsity"
    assert "final sparsity 65.7% at state 3" in sparsity[2].evidence["claim"]
    assert sparsity[2].verdict().passed and not sparsity[3].verdict().passed
    assert sparsity[2].evidence["claim_from"]["final_sparsity"] == "declared in --layout"
    consistency = _by_state(run, "log_consistency")[1]        # no remaining pattern: not judged
    assert isinstance(consistency, NotJudged) and consistency.reason.startswith("no remaining pattern is declared")
    trained = _by_state(run, "trained")[1]
    assert isinstance(trained, NotJudged) and trained.reason.startswith("no init file is declared")


def _suite(pytester: pytest.Pytester, ini: list, *args: str) -> tuple[int, str, dict]:
    if ini:
        path = pytester.makeini("[pytest]\nharness_run_layout =\n" + "".join(f"    {line}\n" for line in ini))
        args = ("-c", str(path), *args)
    reports = pytester.path / "reports"
    result = pytester.runpytest(str(ROOT / "suites" / "pruning"), "--harness-reports-dir",
                                str(reports), "-q", "-p", "no:randomly", "-rs", *args)
    path = reports / "latest" / "report.json"
    report = json.loads(path.read_text()) if path.is_file() else {}
    return int(result.ret), "\n".join(result.outlines + result.errlines), \
        {v["id"]: v for v in report.get("verdicts", [])}


def test_the_pytest_option_judges_the_folder_with_the_layout_in_the_ini_file(pytester, lab):
    ret, output, verdicts = _suite(pytester, LAYOUT, "--harness-from-run", str(lab))
    assert ret == 1, output
    for check in ("sparsity", "log_consistency", "nesting"):
        assert not verdicts[f"pruning/imp/state3/{check}"]["passed"], check
    honest = {i: v for i, v in verdicts.items() if "/state3/" not in i}
    assert {i.split("/")[-1] for i in honest} == {"sparsity", "log_consistency", "nesting", "trained",
                                                   "rewind"}
    assert all(v["passed"] for v in honest.values()), [i for i, v in honest.items() if not v["passed"]]
    assert verdicts["pruning/imp/state1/sparsity"]["evidence"]["claim_from"]["rate"] == "log line 1"


def test_the_pytest_option_takes_the_layout_on_the_command_line_and_refuses_a_bad_one(pytester, lab):
    args = [a for line in LAYOUT for a in ("--harness-run-layout", line.replace(": ", "=", 1))]
    ret, output, verdicts = _suite(pytester, [], "--harness-from-run", str(lab), *args)
    assert ret == 1 and not verdicts["pruning/imp/state3/sparsity"]["passed"], output
    assert verdicts["pruning/imp/state2/sparsity"]["passed"]
    ret, output, _ = _suite(pytester, [], "--harness-from-run", str(lab), *args[:-2],
                            "--harness-run-layout", "rate=0.5")
    assert ret != 0
    assert "harness_run_layout / --harness-run-layout declares rate=0.5 but" in output
    assert "line 1 states rate=0.3; drop the declared rate or correct it" in output


def test_harness_log_shows_the_declared_folder_and_its_checks(lab, capsys):
    layout = [a for line in LAYOUT for a in ("--layout", line.replace(": ", "=", 1))]
    assert main(["log", str(lab), *layout]) == 0
    out = capsys.readouterr().out
    assert f"run:declared {lab}: imp (unstructured, global)" in out
    assert "  claim method imp: declared in --layout" in out and "  claim rate 0.3: log line 1" in out
    assert "state 3: state3_checkpoint.pth.tar, best -; claims sparsity 65.70%; log line 6: 34.30% " \
           "remaining" in out
    assert main(["log", str(lab), *layout, "--checks"]) == 1
    out = capsys.readouterr().out
    failed = sorted(line.split(":")[0] for line in out.splitlines() if line.startswith("FAIL "))
    assert failed == ["FAIL pruning/imp/state3/log_consistency", "FAIL pruning/imp/state3/nesting",
                      "FAIL pruning/imp/state3/sparsity"]
    assert "pass pruning/imp/state2/sparsity: imp State 2 sparsity" in out
    assert main(["log", str(lab)]) == 2                 # undeclared: how to declare it
    assert "checkpoints in no known layout" in capsys.readouterr().err


def test_harness_log_reads_the_layout_the_projects_ini_file_declares(lab, tmp_path, monkeypatch, capsys):
    """As `harness log FILE` reads the project's harness_log_patterns, `harness log DIR` reads its
    harness_run_layout (found from the working folder upwards); --layout replaces it."""
    lines = "".join(f"    '{line}',\n" for line in LAYOUT)          # TOML literal strings
    (tmp_path / "pyproject.toml").write_text(f"[tool.pytest.ini_options]\nharness_run_layout = [\n{lines}]\n")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert main(["log", str(lab), "--checks"]) == 1
    out = capsys.readouterr().out
    assert f"from harness_run_layout in {tmp_path / 'pyproject.toml'}" in out
    failed = sorted(line.split(":")[0] for line in out.splitlines() if line.startswith("FAIL "))
    assert failed == ["FAIL pruning/imp/state3/log_consistency", "FAIL pruning/imp/state3/nesting",
                      "FAIL pruning/imp/state3/sparsity"]
    assert main(["log", str(lab), "--layout", "checkpoint=state{k}_checkpoint.pth.tar", "--layout",
                 "method=lth", "--layout", "final_sparsity=65.7%", "--layout", "states=3"]) == 0
    out = capsys.readouterr().out
    assert f"run:declared {lab}: lth" in out and "harness_run_layout in" not in out
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\nharness_run_layout = ['colour: red']\n")
    assert main(["log", str(lab)]) == 2
    assert "unknown key 'colour'" in capsys.readouterr().err


def _copy(lab: Path, to: Path) -> Path:
    to.mkdir()
    for path in lab.iterdir():
        (to / path.name).write_bytes(path.read_bytes())
    return to


@pytest.mark.parametrize("other", ["state03_checkpoint.pth.tar", "state\u0663_checkpoint.pth.tar"])
def test_two_files_naming_one_state_are_refused_naming_both(lab, tmp_path, other):
    folder = _copy(lab, tmp_path / "run")
    (folder / other).write_bytes((folder / "state3_checkpoint.pth.tar").read_bytes())
    with pytest.raises(RunFolderError, match=f"{other} and state3_checkpoint.pth.tar both name state 3|"
                                             f"state3_checkpoint.pth.tar and {other} both name state 3"):
        open_folder(folder, layout=layout_from_lines(LAYOUT, "test"))


def test_the_research_preset_refuses_a_zero_padded_twin_too(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("3checkpoint.pth.tar", "03checkpoint.pth.tar"):
        torch.save({"state_dict": {}}, folder / name)
    with pytest.raises(RunFolderError, match="03checkpoint.pth.tar and 3checkpoint.pth.tar both name "
                                             "state 3 \\(checkpoint \\{k\\}checkpoint.pth.tar\\)"):
        find_layout(folder)


@pytest.mark.parametrize("lines, message", [
    (["checkpoint: state.pth.tar"], "checkpoint must be one file name in the folder holding {k} once"),
    (["checkpoint: state{k}.pth", "rate: 1.5"], "rate must be a fraction in (0, 1) or a percent such "
                                                "as 30%, got '1.5'"),
    (["checkpoint: s{k}.pth", "scope: per-head"], "scope must be one of global, layer-wise, layer, "
                                                  "got 'per-head'"),
    (["checkpoint: s{k}.pth", "colour: red"], "unknown key 'colour'"),
    (["checkpoint: s{k}.pth", "remaining: left (\\d+)%"], "needs a named group (?P<remaining>...) or "
                                                         "(?P<sparsity>...)"),
    (["checkpoint: s{k}.pth", "remaining: (?P<remaining>(\\d+)+)%"], "repeats a group that itself repeats"),
    (["preset: research", "method: imp"], "the research preset reads its claim and log lines from its "
                                          "own log; drop method"),
])
def test_a_bad_declaration_is_one_line_naming_the_key(lines, message):
    with pytest.raises(RunFolderError) as refused:
        layout_from_lines(lines, "harness_run_layout")
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_a_claim_neither_declared_nor_logged_says_what_to_declare(lab):
    with pytest.raises(RunFolderError, match="the run's claim lacks method, rate or final_sparsity; "
                                             "declare them"):
        open_folder(lab, layout=layout_from_lines(["checkpoint: state{k}_checkpoint.pth.tar"], "ini"))
    with pytest.raises(RunFolderError, match="state 3 is stored, but the run claims 2 pruned states"):
        open_folder(lab, layout=layout_from_lines(["checkpoint: state{k}_checkpoint.pth.tar",
                                                   "method: imp", "final_sparsity: 0.51", "states: 2"], "ini"))


def test_a_header_pattern_a_sparsity_group_glob_names_and_a_prunable_selection(lab, tmp_path):
    """Another naming: ``round{k}_*.pth.tar`` files, a header line opening each state and a line
    printing its sparsity (not what is left); only the convolutions declared prunable."""
    folder = tmp_path / "run"
    folder.mkdir()
    log = ["== round 0 ==", "pruned: 0.00%"]
    for k in range(STATES + 1):
        (folder / f"round{k}_epoch{5 + k}.pth.tar").write_bytes((lab / f"state{k}_checkpoint.pth.tar").read_bytes())
        if k:
            log += [f"== round {k} ==", "train loss 1.9", f"pruned: {100 - 100 * 0.7 ** k:.2f}%"]
    (folder / "out.log").write_text("\n".join(log) + "\n", encoding="utf-8")
    layout = layout_from_lines(["checkpoint: round{k}_*.pth.tar", "state: ^== round (\\d+) ==",
                                "remaining: ^pruned: (?P<sparsity>[\\d.]+)%", "prunable: ^features\\.[03]\\.",
                                "method: imp", "rate: 30%"], "ini")
    run = open_folder(folder, layout=layout)
    assert run.layout.indices() == [0, 1, 2, 3]
    assert run.layout.states[2].checkpoint.name == "round2_epoch7.pth.tar"
    assert run.stored(1).names == ["features.0.weight", "features.3.weight"]
    assert run.logged_sparsity(2) == (pytest.approx(51.0), ["log line 8: pruned: 51.00% (49.00% remaining)"])
    assert run.logged_sparsity(0)[1] == ["log line 2: pruned: 0.00% (100.00% remaining)"]


def test_a_claim_pattern_that_matches_no_line_is_refused(lab):
    lines = ["checkpoint: state{k}_checkpoint.pth.tar", "log: log.txt", "claim: ^args (?P<rate>[\\d.]+)"]
    with pytest.raises(RunFolderError, match=r"claim '\^args \(\?P<rate>\[\\\\d\.\]\+\)' matches no line "
                                             r"of .*log.txt; correct the pattern"):
        open_folder(lab, layout=layout_from_lines(lines, "ini"))
