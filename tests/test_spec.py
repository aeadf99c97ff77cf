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
