"""The reference mode: the per-state-rate schedule and the research group's recipe (validation
split, best SA at the best-validation epoch) through the engine on digits, and the `reference`
profile's data against run_vit_small_70p_all.sh and main_imp_fillback.py's defaults."""
import math

import pytest
import torch
from safetensors.torch import load_file

from harness.models import create_model
from harness.prune.masks import MaskSet
from harness.prune.methods import METHODS
from harness.prune.structure import families, unit_shares
from harness.runs import RunContext, get_or_run
from harness.spec import PruneSpec, Recipe, RunSpec
from suites.profiles import PRUNING_BARS, PRUNING_CASES

RECIPE = Recipe(epochs=2, batch_size=64, lr=3e-3, augment="none", eval_batch_size=512)
PRUNABLE, HEAD, NEURON = 4 * 12 * 64 * 64, 4 * 16 * 64, 2 * 64   # weights of vit_tiny_digits


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    out = {}
    for method in ("refill", "rsst"):
        spec = RunSpec(model="vit_tiny_digits", dataset="digits", recipe=RECIPE, seed=1, validation=143,
                       prune=PruneSpec(method=method, states=2, rewind="init", schedule="per_state_rate",
                                       rate=0.7, reg_schedule="exp_custom_exponents"))
        out[method] = spec, get_or_run(spec, RunContext(device=torch.device("cpu"), reports_dir=root,
                                                        progress=False))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("method", ["refill", "rsst"])
def test_each_state_keeps_its_share_of_heads_and_neurons_as_stored(runs, method):
    spec, record = runs[method]
    # 16 heads -> floor(16 * 0.3) = 4 -> floor(4 * 0.3) = 1; 1024 neurons -> 307 -> 92
    for state, (heads, neurons) in zip(record.states[1:], [(4, 307), (1, 92)]):
        left = {u: sum(f["left"] for f in state.structure.values() if f["unit"] == u) for u in ("head", "neuron")}
        assert left == {"head": heads, "neuron": neurons}
        assert all(f["partial"] == 0 for f in state.structure.values())
        assert state.target_sparsity == pytest.approx(100 * spec.prune.sparsity_at(state.index))
        assert state.sparsity == pytest.approx(100 * (1 - (heads * HEAD + neurons * NEURON) / PRUNABLE))
        assert state.sparsity > state.target_sparsity       # counts round down: a little more removed
        weights, masks = load_file(state.checkpoint), load_file(state.masks)
        assert all(torch.count_nonzero(weights[n][~m]) == 0 for n, m in masks.items())
        assert state.extra["method"] == method
    assert (method == "rsst") == bool(record.states[1].penalty)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["refill", "rsst"])
def test_the_held_out_images_pick_each_states_best_sa(runs, method):
    _, record = runs[method]
    assert (record.notes["train_n"], record.notes["validation_n"]) == (1294, 143)
    for state in record.states:
        assert all(e.val_n == 143 and e.val_accuracy is not None for e in state.epochs)
        chosen = max(state.epochs, key=lambda e: e.val_accuracy)
        best = state.extra["best_sa"]
        assert best["test_accuracy"] == chosen.test_accuracy == state.best_sa
        assert best["epoch"] == chosen.epoch and best["best_test_accuracy"] == state.best_accuracy
        assert "best-validation epoch" in best["definition"]


# --- the reference profile ------------------------------------------------------------------

def _reference() -> list:
    return [c for c in PRUNING_CASES if c.profiles == ("reference",)]


def test_the_reference_profile_runs_the_groups_script_settings():
    cases = _reference()
    assert sorted(c.name for c in cases) == ["refill", "rsst"]
    for case in cases:
        spec, prune = case.spec, case.spec.prune
        for recipe in (spec.recipe, prune.state_recipe):
            assert (recipe.epochs, recipe.batch_size, recipe.lr, recipe.optimizer, recipe.momentum,
                    recipe.weight_decay, recipe.schedule, recipe.warmup_epochs) == \
                   (60, 128, 0.01, "sgd", 0.9, 1e-4, "constant", 20)
        assert (spec.model, spec.dataset, spec.validation, case.needs_init) == \
               ("vit_small_patch4_32", "cifar10", 5000, True)
        assert (prune.schedule, prune.rate, prune.mlp_rate, prune.rate_of, prune.states, prune.rewind) == \
               ("per_state_rate", 0.7, 0.7, "all", 15, "init")
    assert dict(cases[1].spec.prune.__dict__, method="refill") == dict(cases[0].spec.prune.__dict__)


def test_re_selecting_profiles_declare_no_nesting_bar_and_the_others_keep_theirs():
    nesting = {(b.id, b.profiles) for b in PRUNING_BARS if b.id.endswith("/nesting")}
    assert not [i for i, p in nesting if p == ("reference",)]
    for profile, states in (("smoke", 3), ("nightly", 15), ("full", 15)):
        for method in ("refill", "rsst"):
            assert {f"pruning/{method}/state{k}/nesting" for k in range(1, states + 1)} <= \
                   {i for i, p in nesting if p == (profile,)}


def test_the_reference_sparsity_bar_holds_whole_channels_of_vit_s4():
    """The tolerance covers rounding the head and neuron counts down on the real model."""
    torch.manual_seed(0)
    model = create_model("vit_small_patch4_32", 10, 3)
    masks = MaskSet.dense(model)
    fams = families(model, masks)
    spec = _reference()[0].spec.prune
    bars = {b.id: b for b in PRUNING_BARS if b.profiles == ("reference",)}
    for k in (1, 2):
        plan = METHODS["refill"].plan(masks, fams, None, spec)
        plan.final.apply()
        masks = plan.final
        bar = bars[f"pruning/refill/state{k}/sparsity"]
        assert bar.threshold == pytest.approx(100 * spec.sparsity_at(k, unit_shares(fams, masks)))
        assert bar.evaluate(masks.sparsity()).passed
        assert masks.sparsity() == pytest.approx(100 * (1 - (21 * 98304 + 5529 * 768) / 21233664))
    assert not math.isclose(masks.sparsity(), bar.threshold, abs_tol=0.1)   # 0.1 pp would not hold
