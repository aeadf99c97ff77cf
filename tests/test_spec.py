import pytest

from harness.spec import PruneSpec, Recipe, RunSpec, SpecError, spec_from_dict


def spec(**kw):
    base = dict(model="vit_tiny_digits", dataset="digits", recipe=Recipe(epochs=2), seed=0)
    base.update(kw)
    return RunSpec(**base)


def test_hash_is_stable_and_independent_of_label():
    assert spec().stable_hash() == spec(label="anything").stable_hash()
    assert spec().stable_hash() == spec_from_dict(spec().to_dict()).stable_hash()
    assert len(spec().stable_hash()) == 16


@pytest.mark.parametrize("change", [
    dict(seed=1), dict(recipe=Recipe(epochs=3)), dict(recipe=Recipe(epochs=2, lr=2e-3)),
    dict(init="/x.pth"), dict(dataset="cifar10"), dict(prune=PruneSpec(states=2))])
def test_hash_changes_with_anything_that_changes_the_numbers(change):
    assert spec().stable_hash() != spec(**change).stable_hash()


def test_hash_changes_with_device_init_bytes_and_model_definition():
    s = spec()
    assert s.stable_hash(device_type="cpu") != s.stable_hash(device_type="cuda")
    assert s.stable_hash(init_digest="a") != s.stable_hash(init_digest="b")
    assert s.stable_hash(model_definition="a") != s.stable_hash(model_definition="b")


def test_round_trip_with_prune_recipe():
    s = spec(prune=PruneSpec(states=2, state_recipe=Recipe(epochs=1, milestones=())))
    assert spec_from_dict(s.to_dict()) == s


@pytest.mark.parametrize("kwargs, field", [
    (dict(epochs=0), "Recipe.epochs"), (dict(lr=-1), "Recipe.lr"),
    (dict(optimizer="lion"), "Recipe.optimizer"), (dict(schedule="poly"), "Recipe.schedule"),
    (dict(epochs=2, warmup_epochs=2), "Recipe.warmup_epochs")])
def test_recipe_errors_name_field_expectation_and_value(kwargs, field):
    with pytest.raises(SpecError) as err:
        Recipe(**kwargs)
    assert field in str(err.value) and "got" in str(err.value)


def test_runspec_validates_seed():
    with pytest.raises(SpecError, match="RunSpec.seed must be an int, got '1'"):
        spec(seed="1")


# --- PruneSpec: the schedule it describes, user mistakes named by field and value ----------

def test_sparsity_schedule_is_geometric_towards_the_final_target():
    spec = PruneSpec(states=15, final_sparsity=0.7)
    assert spec.sparsity_at(0) == 0
    assert spec.sparsity_at(15) == pytest.approx(0.7)
    remain = [1 - spec.sparsity_at(k) for k in range(16)]
    ratios = [b / a for a, b in zip(remain, remain[1:])]
    assert max(ratios) - min(ratios) < 1e-12      # each state prunes the same share of what is left


@pytest.mark.parametrize("kwargs, field", [
    ({"method": "magic"}, "PruneSpec.method must be one of ('imp', 'refill', 'rsst'), got 'magic'"),
    ({"final_sparsity": 1.0}, "PruneSpec.final_sparsity must be in (0, 1), got 1.0"),
    ({"rewind": "epoch:x"}, "PruneSpec.rewind must be"),
    ({"reg_schedule": "x^4"}, "PruneSpec.reg_schedule must be one of"),
    ({"reg_granularity": 0.5, "reg_limit": 0.1}, "PruneSpec.reg_granularity must be in (0, reg_limit=0.1]"),
    ({"channel_criterion": "l3"}, "PruneSpec.channel_criterion must be one of"),
])
def test_mistakes_name_the_field_and_the_value(kwargs, field):
    with pytest.raises(SpecError) as info:
        PruneSpec(**kwargs)
    assert str(info.value).startswith(field)


def test_rewind_epoch_must_be_an_epoch_of_state_zero():
    assert PruneSpec(rewind="epoch:3").rewind_epoch == 3
    assert PruneSpec(rewind="init").rewind_epoch == 0 and PruneSpec(rewind="none").rewind_epoch is None
    with pytest.raises(SpecError, match=r"PruneSpec.rewind must be an epoch of State 0 \(< recipe.epochs=2\), "
                                        r"got 'epoch:2'"):
        RunSpec(model="vit_tiny_digits", dataset="digits", recipe=Recipe(epochs=2),
                prune=PruneSpec(rewind="epoch:2"))


def test_a_pruning_spec_round_trips_and_hashes_by_method():
    spec = RunSpec(model="vit_tiny_digits", dataset="digits",
                   prune=PruneSpec(method="rsst", state_recipe=Recipe(epochs=3)))
    assert spec_from_dict(spec.to_dict()) == spec
    other = RunSpec(model="vit_tiny_digits", dataset="digits",
                    prune=PruneSpec(method="refill", state_recipe=Recipe(epochs=3)))
    assert spec.stable_hash() != other.stable_hash()


# --- the per-state-rate schedule, the validation split, and store keys ---------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(method="imp", schedule="per_state_rate", rate=0.5),
     "PruneSpec.method must be 'refill' or 'rsst' with schedule='per_state_rate'"),
    (dict(method="refill", schedule="per_state_rate"),
     "PruneSpec.rate must be a number in (0, 1) with schedule='per_state_rate', got None"),
    (dict(method="refill", schedule="per_state_rate", rate=1.0), "PruneSpec.rate must be a number in (0, 1)"),
    (dict(method="rsst", schedule="per_state_rate", rate=0.7, mlp_rate=0),
     "PruneSpec.mlp_rate must be None (the same as rate) or a number in (0, 1), got 0"),
    (dict(method="refill", rate=0.7), "PruneSpec.rate must be None with schedule='geometric'"),
    (dict(method="refill", mlp_rate=0.7), "PruneSpec.mlp_rate must be None with schedule='geometric'"),
    (dict(method="refill", schedule="linear"),
     "PruneSpec.schedule must be one of ('geometric', 'per_state_rate'), got 'linear'"),
    (dict(method="refill", rate_of="left"), "PruneSpec.rate_of must be one of ('remaining', 'all'), got 'left'"),
])
def test_per_state_rate_mistakes_name_the_field_and_the_value(kwargs, message):
    with pytest.raises(SpecError) as info:
        PruneSpec(**kwargs)
    assert str(info.value).startswith(message)


def test_per_state_rate_targets_compound_over_remaining_or_repeat_over_all():
    remaining = PruneSpec(method="refill", schedule="per_state_rate", rate=0.7)
    assert [round(remaining.sparsity_at(k), 6) for k in range(4)] == [0, 0.7, 0.91, 0.973]
    every = PruneSpec(method="rsst", schedule="per_state_rate", rate=0.7, rate_of="all")
    assert [every.sparsity_at(k) for k in range(4)] == [0, 0.7, 0.7, 0.7]
    assert not remaining.nested and PruneSpec(method="refill").nested
    assert remaining.unit_rates == {"head": 0.7, "neuron": 0.7, "channel": 0.7}


def test_a_model_free_target_needs_equal_rates():
    spec = PruneSpec(method="refill", schedule="per_state_rate", rate=0.5, mlp_rate=0.2)
    assert spec.sparsity_at(1, {"head": 0.25, "neuron": 0.75}) == pytest.approx(0.125 + 0.15)
    with pytest.raises(SpecError, match="PruneSpec.mlp_rate must be equal to rate for a model-free"):
        spec.sparsity_at(1)


def test_validation_is_a_count_of_held_out_images():
    assert spec(validation=100).validation == 100
    for bad in (-1, 1.5, True):
        with pytest.raises(SpecError, match=r"RunSpec.validation must be an int >= 0 .*, got "):
            spec(validation=bad)


def test_new_fields_at_their_default_leave_store_keys_unchanged():
    """Runs stored before the fields existed keep their keys: a default stays out of the hash."""
    from harness.spec import _canonical

    plain = spec(prune=PruneSpec(method="refill"))
    hashed = _canonical(plain)
    assert "validation" not in hashed
    assert not {"schedule", "rate", "mlp_rate", "rate_of"} & set(hashed["prune"])
    reference = spec(validation=10, prune=PruneSpec(method="refill", schedule="per_state_rate", rate=0.7))
    hashed = _canonical(reference)
    assert hashed["validation"] == 10 and hashed["prune"]["rate"] == 0.7
    assert plain.stable_hash() != reference.stable_hash()
    assert spec_from_dict(reference.to_dict()) == reference
    assert spec_from_dict({k: v for k, v in plain.to_dict().items() if k != "validation"}) == plain
