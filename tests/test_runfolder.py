"""harness.runfolder on small real folders written here (a tiny model of the group's layout, real
torch.save files, torch.nn.utils.prune reparametrisations, a log in their print format): layout,
safe reading, claims, the checks' measures and their one-line failures, `harness log DIR`."""
import argparse
import json
import math
import os
from pathlib import Path

import pytest
import torch
import torch.nn.utils.prune as prune

from fixtures.rsst_model import GroupLayoutViT
from harness.cli import main
from harness.options import OptionError, Options, resolve
from harness.runfolder import NotJudged, RunFolderError, open_folder
from harness.runfolder.channels import key_families, removable_ratio
from harness.runfolder.claims import Pools, research_claims
from harness.runfolder.layout import find_layout, init_candidates, run_cwd
from harness.runfolder.stored import read_research_state

HEAD_KEEP, NEURON_KEEP = [0], list(range(16))     # of 2 heads, 32 neurons per block


def _model() -> GroupLayoutViT:
    torch.manual_seed(0)
    return GroupLayoutViT(num_classes=10, image_size=16, patch=8, dim=16, depth=2, num_heads=2,
                          mlp_ratio=2)


def _args(method: str, **changes) -> str:
    values = dict(dataset="digits", arch="tiny", seed=1, save_dir="run", init="init_model/tiny.pth.tar",
                  epochs=1, pruning_times=2, rate=0.5, prune_type="lt", struct=method,
                  vit_structured=True, vit_prune_target="both", mlp_prune_ratio=0.5,
                  sorting_mode="global")
    values.update(changes)
    return repr(argparse.Namespace(**values))


def _state_log(k: int, start: float, after: list, best: float) -> list[str]:
    lines = ["*" * 42, f"pruning state {k}", "*" * 42, f"Remaining weights: {start:.2f}%", "0.01",
             "Epoch: [0][0/10]\tLoss 2.3000 (2.3000)\tAccuracy 10.000 (10.000)\tTime 0.01",
             "train_accuracy 10.000", "valid_accuracy 20.000", "valid_accuracy 25.000",
             "valid_accuracy 20.000", f"* best SA={best}"]
    for name in ("blocks.0.attn.qkv", "blocks.1.attn.qkv"):
        lines += [f"Layer: {name}", f"  Keeping {len(HEAD_KEEP)}/2 heads: {HEAD_KEEP}"]
    lines += [f"Remaining weights: {r:.2f}%" for r in after]
    return lines + [f"⏱️  State {k} completed! Time elapsed: 0.00 minutes (0.1 seconds)"]


def _masks(model) -> dict:
    masks = {}
    for b in range(2):
        qkv = torch.zeros(3, 2, 8, 16)
        qkv[:, HEAD_KEEP] = 1
        proj = torch.zeros(16, 2, 8)
        proj[:, HEAD_KEEP] = 1
        fc1, fc2 = torch.zeros(32, 16), torch.zeros(16, 32)
        fc1[NEURON_KEEP], fc2[:, NEURON_KEEP] = 1, 1
        masks.update({f"blocks.{b}.attn.qkv": qkv.view(48, 16), f"blocks.{b}.attn.proj": proj.view(16, 16),
                      f"blocks.{b}.mlp.fc1": fc1, f"blocks.{b}.mlp.fc2": fc2})
    return masks


def _save(path: Path, model, init: dict, best: float) -> None:
    result = {"train": [10.0], "ta": [20.0], "test_ta": [best]}
    torch.save({"state": 0, "result": result, "epoch": 1, "state_dict": model.state_dict(),
                "best_sa": 20.0, "init_weight": init}, path)


def write_folder(root: Path, method: str = "refill", *, cut_in_files: bool = True,
                 alias: bool = False) -> Path:
    """A 2-state run: state 0 dense and moved from the init; state 1 masked whole heads and
    neurons through torch's prune reparametrisation (``cut_in_files``), else stored dense."""
    model = _model()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    (root / "init_model").mkdir(parents=True)
    torch.save(init, root / "init_model" / "tiny.pth.tar")
    folder = root / "run"
    folder.mkdir()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    _save(folder / "0checkpoint.pth.tar", model, init, 25.0)
    model.load_state_dict(init)
    if cut_in_files:
        for name, module in model.named_modules():
            if name in _masks(model):
                if alias:
                    module.weight.data = init[f"{name}.weight"]
                prune.custom_from_mask(module, "weight", _masks(model)[name])
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    _save(folder / "1checkpoint.pth.tar", model, init, 30.0)
    kept = 100.0 * sum(float(m.sum()) for m in _masks(model).values()) / \
        sum(m.numel() for m in _masks(model).values())
    lines = [_args(method)] + _state_log(0, 100.0, [50.0, kept], 25.0) + \
        _state_log(1, kept if method == "refill" else 100.0, [25.0, kept], 30.0)
    (folder / "train.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def _outcomes(run, check: str) -> dict:
    return {o.state: o for o in run.outcomes(check)}


def test_a_reparametrised_state_is_read_as_weight_orig_times_mask(tmp_path):
    folder = write_folder(tmp_path)
    stored = read_research_state(folder / "1checkpoint.pth.tar")
    assert stored.names[:4] == ["blocks.0.attn.qkv.weight", "blocks.0.attn.proj.weight",
                                "blocks.0.mlp.fc1.weight", "blocks.0.mlp.fc2.weight"]
    assert stored.form == "weight_orig/weight_mask pairs for all 8 prunable weights"
    raw = torch.load(folder / "1checkpoint.pth.tar", weights_only=True)["state_dict"]
    orig, mask = raw["blocks.0.attn.qkv.weight_orig"], raw["blocks.0.attn.qkv.weight_mask"]
    assert bool((orig[mask == 0] != 0).all())            # pruned entries keep values in weight_orig
    assert torch.equal(stored.weights["blocks.0.attn.qkv.weight"], orig * mask)
    assert stored.sparsity == pytest.approx(50.0)
    assert stored.init_weight is not None and stored.reported_accuracy() == 30.0
    dense = read_research_state(folder / "0checkpoint.pth.tar")
    assert dense.form == "plain weights (no weight_mask)" and dense.sparsity == 0.0


def test_a_pickle_that_would_run_code_is_refused_without_running_it(tmp_path):
    folder = write_folder(tmp_path)
    sentinel = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {sentinel}",))

    torch.save({"state_dict": {"x": torch.zeros(1)}, "result": Payload()}, folder / "1checkpoint.pth.tar")
    run = open_folder(folder)
    with pytest.raises(RunFolderError, match="refused without running it"):
        run.outcomes("sparsity")
    assert not sentinel.exists()


def test_the_layout_reads_only_the_folder_and_follows_no_link(tmp_path):
    folder = write_folder(tmp_path)
    outside = tmp_path / "elsewhere.pth.tar"
    outside.write_bytes((folder / "0checkpoint.pth.tar").read_bytes())
    (folder / "2checkpoint.pth.tar").symlink_to(outside)
    layout = find_layout(folder)
    assert layout.kind == "research" and layout.indices() == [0, 1]
    assert layout.skipped == ["2checkpoint.pth.tar: a link, not followed",
                              f"state 2 not judged: 2checkpoint.pth.tar: a link (to {outside}), not "
                              f"followed; state 2 has no file to judge"]
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "train.log").write_text("hello\n")
    with pytest.raises(RunFolderError, match="no {k}checkpoint.pth.tar"):
        find_layout(empty)


def test_the_init_file_is_looked_for_where_the_run_ran():
    assert run_cwd(Path("/x/a/b"), "a/b") == Path("/x")
    assert run_cwd(Path("/x/run"), "elsewhere") == Path("/x")
    assert init_candidates(Path("/x/a/b"), "init_model/i.pth", "a/b")[0] == Path("/x/init_model/i.pth")
    assert init_candidates(Path("/x/r"), "/abs/i.pth", "r") == [Path("/x/r/i.pth")]   # a claim only
    assert init_candidates(Path("/x/r"), "../../etc/i.pth", "r") == [Path("/x/r/i.pth")]


def test_claims_of_the_groups_arguments():
    refill = research_claims({"struct": "refill", "rate": 0.7, "mlp_prune_ratio": 0.7,
                              "vit_structured": True, "vit_prune_target": "both",
                              "sorting_mode": "global", "prune_type": "lt"})
    pools = Pools(total=442368, attention=147456, heads=24, mlp=294912, neurons=1536, layers=4)
    target = refill.target(2, pools)          # the same rate every state, not compounding
    assert target.sparsity == pytest.approx(70.0)
    assert target.tolerance == pytest.approx(0.1 + 100 * (147456 / 24 + 294912 / 1536) / 442368)
    assert (refill.rewind, refill.nested, refill.penalised, refill.log_rule) == ("init", False, False, "state_start")
    rsst = research_claims({"struct": "rsst", "rate": 0.7, "vit_structured": True,
                            "vit_prune_target": "both", "prune_type": "rewind_lt", "rewind_epoch": 3})
    assert rsst.target(3, pools).sparsity == pytest.approx(97.3)
    assert (rsst.rewind, rsst.nested, rsst.penalised, rsst.log_rule) == ("epoch:3", True, True, "pruning_step")
    with pytest.raises(RunFolderError, match="struct='imp2'; known: refill, rsst"):
        research_claims({"struct": "imp2", "rate": 0.7})
    with pytest.raises(RunFolderError, match="rate=1.5"):
        research_claims({"struct": "rsst", "rate": 1.5})


def test_families_come_from_shapes_and_the_logs_head_counts():
    names = ["b.attn.qkv.weight", "b.attn.proj.weight", "b.mlp.fc1.weight", "b.mlp.fc2.weight"]
    shapes = {names[0]: (48, 16), names[1]: (16, 16), names[2]: (32, 16), names[3]: (16, 32)}
    fams, unknown = key_families(names, shapes, {})
    assert unknown == ["b.attn"] and [f.unit for f in fams] == ["neuron", "channel", "channel"]
    fams, unknown = key_families(names, shapes, {"b.attn": 2})
    assert unknown == [] and [(f.name, f.unit, f.n) for f in fams] == [("b.attn", "head", 2),
                                                                       ("b.mlp", "neuron", 32)]
    weights = {n: torch.ones(shapes[n]) for n in names}
    weights[names[2]][16:] = 0.1       # the 16 weakest neurons: rows of fc1 ...
    weights[names[3]][:, 16:] = 0.1    # ... and columns of fc2, at a tenth of the rest
    measured = removable_ratio(fams, names, weights, {"neuron": 0.5})
    assert measured["ratio"] == pytest.approx(0.1) and measured["removed_weights"] == 16 * 32


def test_checks_on_a_refill_folder_whose_init_is_aliased(tmp_path):
    run = open_folder(write_folder(tmp_path, alias=True))
    assert _outcomes(run, "sparsity")[1].verdict().passed            # 50% of heads and neurons
    assert _outcomes(run, "structure")[1].observed == 0
    assert _outcomes(run, "log_consistency")[1].verdict().passed
    assert _outcomes(run, "trained")[1].observed == 0
    rewind = _outcomes(run, "rewind")[1]
    assert rewind.observed == 8 and not rewind.verdict().passed      # the saved init moved
    assert "init_weight in 1checkpoint.pth.tar differs from" in rewind.verdict().line()
    nesting = _outcomes(run, "nesting")[1]
    assert isinstance(nesting, NotJudged) and "re-selects its masks" in nesting.reason
    assert isinstance(_outcomes(run, "reported_accuracy")[0], NotJudged)


def test_checks_on_an_rsst_folder_saved_before_its_cut(tmp_path):
    run = open_folder(write_folder(tmp_path, "rsst", cut_in_files=False))
    sparsity = _outcomes(run, "sparsity")[1]
    assert (sparsity.observed, sparsity.expectation.threshold) == (0.0, 50.0)
    line = sparsity.verdict().line()
    assert "1checkpoint.pth.tar (plain weights (no weight_mask)): blocks.0.attn.qkv.weight 0.00%" in line
    logged = _outcomes(run, "log_consistency")[1]      # the pruning step's line, not the header's
    assert logged.expectation.threshold == 50.0 and "Remaining weights: 50.00%" in logged.verdict().line()
    penalty = _outcomes(run, "penalty")[1]
    assert penalty.observed > 0.5 and not penalty.verdict().passed
    assert _outcomes(run, "rewind")[1].verdict().passed              # the init it keeps is intact
    assert isinstance(_outcomes(run, "penalty").get(0), type(None))


def test_a_folder_without_its_log_says_how_to_pass_it(tmp_path):
    folder = write_folder(tmp_path)
    (folder / "train.log").rename(tmp_path / "elsewhere.log")
    with pytest.raises(RunFolderError, match="pass it with --harness-from-log LOG"):
        open_folder(folder)
    run = open_folder(folder, log=tmp_path / "elsewhere.log")
    assert run.claims.method == "refill"


def test_from_run_option_errors_are_one_line(tmp_path):
    with pytest.raises(OptionError, match=r"^--harness-from-run .*not a folder"):
        resolve(Options(from_run=tmp_path / "missing"), cuda_available=False)
    with pytest.raises(OptionError, match="expected package.module:factory"):
        resolve(Options(from_run=tmp_path, from_run_model="nocolon"), cuda_available=False)
    resolved = resolve(Options(from_run=write_folder(tmp_path)), cuda_available=False)
    assert resolved.run_record.source == "run:research" and len(resolved.run_record.states) == 2


def test_harness_log_shows_what_a_run_folder_holds(tmp_path, capsys):
    folder = write_folder(tmp_path)
    assert main(["log", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"run:research {folder}: refill (structured), claims from the arguments" in out
    assert "state 1: 1checkpoint.pth.tar, best -; claims 0.5 of the heads and 0.5 of the MLP" in out
    assert f"init file: {tmp_path / 'init_model' / 'tiny.pth.tar'}" in out
    assert "log:research" in out and "state 1: 1 evaluated epochs" in out
    (folder / "train.log").rename(tmp_path / "moved.log")
    assert main(["log", str(folder)]) == 2
    assert "pass it with --run-log LOG" in capsys.readouterr().err
    assert main(["log", str(folder), "--run-log", str(tmp_path / "moved.log")]) == 0


def test_the_penalty_bar_separates_a_penalised_state_from_an_unpenalised_one():
    """Unpenalised trained weights keep their smallest channels near the others' scale; an L2
    penalty that acted on them for a state shrinks them by far more than half."""
    torch.manual_seed(0)
    names = ["b.mlp.fc1.weight", "b.mlp.fc2.weight"]
    shapes = {names[0]: (64, 32), names[1]: (32, 64)}
    fams, _ = key_families(names, shapes, {})
    weights = {n: 0.02 * torch.randn(shapes[n]) for n in names}
    plain = removable_ratio(fams, names, weights, {"neuron": 0.7})["ratio"]
    penalised = {n: w.clone() for n, w in weights.items()}
    order = torch.argsort(weights[names[0]].abs().sum(1))[:44]
    shrink = math.exp(-0.01 * 0.1 * 2 * 5000)     # lr 0.01, coefficient 0.1, 5,000 steps
    penalised[names[0]][order] *= shrink
    penalised[names[1]][:, order] *= shrink
    assert plain > 0.8 and removable_ratio(fams, names, penalised, {"neuron": 0.7})["ratio"] < 0.5


def test_names_from_a_file_reach_the_verdict_line_with_controls_visible():
    from harness.expect import Expectation
    from harness.runfolder import Finding

    bar = Expectation("pruning/rsst/state1/sparsity", "rsst State 1 sparsity", "within", 70.0, "%", 0.1)
    finding = Finding("sparsity", 1, bar, 0.0, {"note": "blocks.0.attn.q\x1b[2Jkv.weight 0.00% zero"})
    line = finding.verdict().line()
    assert "\x1b" not in line and "q\\x1b[2Jkv.weight" in line


def test_a_store_run_takes_no_log_model_or_dataset(tmp_path):
    folder = tmp_path / "runs" / "abc"
    folder.mkdir(parents=True)
    (folder / "record.json").write_text("{}")
    with pytest.raises(RunFolderError, match="names its own model, data and records.*drop the log"):
        open_folder(folder, log=tmp_path / "x.log")
    from harness.store import StoreWarning

    with pytest.warns(StoreWarning, match="not a run record"), \
            pytest.raises(RunFolderError, match="without an intact record.json"):
        open_folder(folder)


def _relog(folder: Path, **changes) -> None:
    """The folder's log with its arguments line (the first) changed."""
    lines = (folder / "train.log").read_text(encoding="utf-8").splitlines()
    (folder / "train.log").write_text("\n".join([_args("refill", **changes)] + lines[1:]) + "\n",
                                      encoding="utf-8")


def test_an_init_or_rewind_file_that_is_a_link_or_out_of_the_folder_is_refused(tmp_path):
    folder = write_folder(tmp_path)
    outside = tmp_path / "outside.pth.tar"
    outside.write_bytes((tmp_path / "init_model" / "tiny.pth.tar").read_bytes())
    (folder / "epoch_3.pth.tar").symlink_to(outside)
    (folder / "mine.pth.tar").symlink_to(outside)
    _relog(folder, prune_type="rewind_lt", rewind_epoch=3, init="mine.pth.tar", save_dir="other")
    run = open_folder(folder)
    rewind, trained = _outcomes(run, "rewind")[1], _outcomes(run, "trained")[1]
    link = f"{folder / 'epoch_3.pth.tar'}: a link (to {outside}), not followed"
    assert isinstance(rewind, NotJudged) and rewind.reason.startswith(link)
    assert isinstance(trained, NotJudged) and trained.reason.startswith(
        f"{folder / 'mine.pth.tar'}: a link (to {outside}), not followed")
    (folder / "epoch_").mkdir()               # the log's rewind_epoch climbs out of the folder
    _relog(folder, prune_type="rewind_lt", rewind_epoch="/../../outside", save_dir="other")
    rewind = _outcomes(open_folder(folder), "rewind")[1]
    assert isinstance(rewind, NotJudged) and rewind.reason == (
        f"{folder / 'epoch_/../../outside.pth.tar'}: outside the run folder {folder}; not read")


def test_a_store_folder_whose_record_names_a_link_is_refused_in_one_line(tmp_path):
    from harness.record import RunRecord, StateRecord
    from harness.store import RunStore

    store = RunStore(tmp_path / "runs")
    store.path("abc").mkdir(parents=True)
    state = StateRecord(index=0)
    weights = {"blocks.0.mlp.fc1.weight": torch.ones(4, 4)}
    store.save_masks("abc", state, {"blocks.0.mlp.fc1.weight": torch.ones(4, 4, dtype=torch.bool)}, {})
    store.save_state("abc", state, weights, {})
    store.save_record("abc", RunRecord("abc", "engine", "digits", 10, "fixtures.rsst_model:vit_mini",
                                       states=[state]))
    outside = tmp_path / "elsewhere.safetensors"
    saved = store.path("abc") / "state0.safetensors"
    saved.rename(outside)
    saved.symlink_to(outside)                  # the same bytes: the record's checksum still holds
    with pytest.raises(RunFolderError) as refused:
        open_folder(store.path("abc"))
    assert str(refused.value) == f"state 0 checkpoint: {saved}: a link (to {outside}), not followed: " \
                                 f"the files of a run folder are read from the folder itself"
    saved.unlink()                             # the record names a file out of the store
    record = json.loads((store.path("abc") / "record.json").read_text())
    record["states"][0]["checkpoint"] = "abc/../../elsewhere.safetensors"
    (store.path("abc") / "record.json").write_text(json.dumps(record))
    with pytest.raises(RunFolderError, match=r"^state 0 checkpoint: .*/runs/abc/\.\./\.\./elsewhere"
                                             r"\.safetensors: outside the runs store .*/runs; not read$"):
        open_folder(store.path("abc"))


def test_states_of_another_shape_or_empty_tensors_are_one_line(tmp_path):
    folder = write_folder(tmp_path)
    state = torch.load(folder / "0checkpoint.pth.tar", weights_only=True)
    wrong = {k: torch.zeros(3, 3) if v.ndim == 2 else v for k, v in state["state_dict"].items()}
    torch.save({"state_dict": wrong}, folder / "1checkpoint.pth.tar")
    with pytest.raises(RunFolderError, match=r"1checkpoint.pth.tar: blocks.0.attn.qkv.weight is "
                                             r"\(3, 3\), but \(48, 16\) in the run's first stored"):
        open_folder(folder).outcomes("sparsity")
    torch.save(wrong, tmp_path / "init_model" / "tiny.pth.tar")        # another model's init
    torch.save(state, folder / "1checkpoint.pth.tar")
    trained = _outcomes(open_folder(folder), "trained")[0]
    assert isinstance(trained, NotJudged) and "tiny.pth.tar: blocks.0.attn.qkv.weight is (3, 3)" \
        in trained.reason
    empty = {k: v[:0] if v.ndim == 2 else v for k, v in state["state_dict"].items()}
    torch.save({"state_dict": empty}, folder / "1checkpoint.pth.tar")
    with pytest.raises(RunFolderError, match=r"blocks.0.attn.qkv.weight is empty \(shape \(0, 16\)\)"):
        open_folder(folder).outcomes("sparsity")


def test_a_folder_named_in_bytes_that_are_not_utf8_opens_and_prints_escaped(tmp_path, capsys):
    parent = tmp_path / os.fsdecode(b"ev\x1b[2J\xff")
    parent.mkdir()
    folder = write_folder(parent)
    (folder / os.fsdecode(b"7checkpoint\x1b[31m\xfe.pth.tar")).symlink_to("/etc/hostname")
    run = open_folder(folder)
    assert run.record.run_id.startswith("run-")
    assert main(["log", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "ev\\x1b[2J\\udcff" in out
    assert "7checkpoint\\x1b[31m\\udcfe.pth.tar: a link, not followed" in out


def test_a_folder_of_more_entries_than_the_bound_is_listed_up_to_it(tmp_path, monkeypatch):
    import harness.runfolder.layout as layout

    folder = write_folder(tmp_path)
    for k in range(2, 42):
        os.link(folder / "0checkpoint.pth.tar", folder / f"{k}checkpoint.pth.tar")
    monkeypatch.setattr(layout, "MAX_ENTRIES", 10)
    found = find_layout(folder)                       # 43 entries, listed in the folder's order
    assert found.skipped == ["more than 10 entries: the rest not listed"]
    assert len(found.indices()) + len(found.logs) == 10
