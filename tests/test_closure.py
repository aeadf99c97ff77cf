"""Run keys cover the code a run computes from: a user's dataset and model factories, the project
files they import (harness.closure) and RunSpec.inputs; an edit outside that code reuses the run.
Real files in a temporary project, real imports, real training for the session test."""
import importlib
import sys
from pathlib import Path

import pytest
import torch

from harness.closure import module_closure, run_code
from harness.models import model_definition
from harness.runs import RunContext, get_or_run, init_digest, run_key
from harness.spec import Recipe, RunSpec, SpecError

CPU = torch.device("cpu")
DATA = "labdata.data:make"

FACTORY = '''
import torch

from .noise import LEVEL


def make(data_root=None):
    """Four classes of 8x8 stripes, with noise of LEVEL."""
    from labdata import shapes                # imported where it is used: still the run's code

    g = torch.Generator().manual_seed(0)

    def split(n):
        labels = torch.arange(n) % 4
        clean = shapes.stripes(labels)
        noisy = clean + LEVEL * 255 * torch.rand(clean.shape, generator=g)
        return noisy.clamp(0, 255).to(torch.uint8), labels
    return {"train": split(200), "test": split(100), "num_classes": 4}
'''

SHAPES = '''
import torch


def stripes(labels):
    images = torch.zeros(len(labels), 1, 8, 8)
    for k in range(4):
        images[labels == k, :, 2 * k:2 * k + 2, :] = 200.0
    return images
'''


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A user's project: a dataset factory package, a file it does not import, a script beside."""
    root = tmp_path / "project"
    _write(root / "labdata" / "__init__.py", "")
    _write(root / "labdata" / "data.py", FACTORY)
    _write(root / "labdata" / "noise.py", "LEVEL = 0.1\n")
    _write(root / "labdata" / "shapes.py", SHAPES)
    _write(root / "labdata" / "unused.py", "VALUE = 1\n")
    _write(root / "train_script.py", "print('the lab trains here')\n")
    monkeypatch.syspath_prepend(str(root))
    yield root
    _forget_modules()


def _forget_modules() -> None:
    """What a new session (a new process) starts without: the project's modules."""
    for name in [m for m in sys.modules if m == "labdata" or m.startswith("labdata.")]:
        del sys.modules[name]
    importlib.invalidate_caches()


def _spec(**kw) -> RunSpec:
    base = dict(model="vit_tiny_digits", dataset=DATA, seed=0,
                recipe=Recipe(epochs=1, batch_size=100, lr=2e-3, augment="none", eval_batch_size=512))
    return RunSpec(**{**base, **kw})


def test_the_closure_is_the_factory_module_and_the_project_files_it_imports(project, tmp_path):
    outside = tmp_path / "elsewhere" / "secret.py"
    _write(outside, "TOKEN = 1\n")
    (project / "labdata" / "linked.py").symlink_to(outside)
    _write(project / "labdata" / "data.py", FACTORY + "\nfrom labdata import linked  # noqa\n")
    importlib.import_module("labdata.data")
    closure = module_closure("labdata.data")
    assert closure.root == project.resolve()
    assert set(closure.files) == {"labdata/__init__.py", "labdata/data.py", "labdata/noise.py",
                                  "labdata/shapes.py"}          # not unused.py, torch or the link
    assert closure.notes == ("labdata.linked: labdata/linked.py is a link out of the project, "
                             "not followed",)


def test_an_edit_of_the_dataset_factorys_code_changes_the_key_an_unrelated_edit_does_not(project):
    spec = _spec()
    key = run_key(spec, CPU)
    (project / "train_script.py").write_text("print('the lab trains elsewhere now')\n")
    (project / "labdata" / "unused.py").write_text("VALUE = 2\n")
    assert run_key(spec, CPU) == key
    (project / "labdata" / "noise.py").write_text("LEVEL = 0.35\n")
    noisier = run_key(spec, CPU)
    assert noisier != key
    (project / "labdata" / "shapes.py").write_text(SHAPES.replace("200.0", "180.0"))
    assert run_key(spec, CPU) not in (key, noisier)


def test_a_model_factory_is_keyed_by_its_package_too():
    own = Path(__file__).resolve().parent.parent / "examples" / "own_project"
    sys.path.insert(0, str(own))
    try:
        code = run_code(_spec(model="own_vit.model:vit_digits", dataset="digits"))
    finally:
        sys.path.remove(str(own))
    assert set(code) == {"model"} and code["model"].root == own
    assert set(code["model"].files) == {"own_vit/__init__.py", "own_vit/model.py"}


def test_runs_of_harness_models_on_registered_datasets_keep_their_keys():
    """No code beyond the spec: the key is the one the harness made before code was keyed."""
    spec = _spec(dataset="digits")
    assert run_code(spec) == {}
    assert run_key(spec, CPU) == spec.stable_hash(device_type="cpu", init_digest=init_digest(None),
                                                  model_definition=model_definition(spec.model))


def test_inputs_key_the_run_by_their_bytes(project):
    _write(project / "configs" / "noise.yaml", "level: 0.1\n")
    spec = _spec(dataset="digits", inputs=["configs/noise.yaml"])
    assert spec.inputs == ("configs/noise.yaml",)
    key = run_key(spec, CPU, project)
    assert key != run_key(_spec(dataset="digits"), CPU)
    (project / "configs" / "noise.yaml").write_text("level: 0.3\n")
    assert run_key(spec, CPU, project) != key
    with pytest.raises(SpecError, match=r"^RunSpec.inputs names 'configs/missing.yaml', which is "
                                        r"not a file under the project root "):
        run_key(_spec(inputs=("configs/missing.yaml",)), CPU, project)
    with pytest.raises(SpecError, match=r"RunSpec.inputs must be a list of file paths"):
        _spec(inputs="configs/noise.yaml")


@pytest.mark.slow
def test_the_next_session_retrains_after_the_factory_is_edited_and_reuses_after_other_edits(
        project, tmp_path):
    context = RunContext(device=CPU, reports_dir=tmp_path / "reports", progress=False, root=project)
    first = get_or_run(_spec(), context)
    keyed = first.notes["keyed_code"]["dataset"]
    assert not first.notes["reused"] and keyed["root"] == str(project.resolve())
    assert sorted(keyed["files"]) == ["labdata/__init__.py", "labdata/data.py", "labdata/noise.py",
                                      "labdata/shapes.py"]

    _forget_modules()                                  # the next session: a new process
    (project / "labdata" / "data.py").write_text(FACTORY.replace("LEVEL * 255", "3 * LEVEL * 255"))
    second = get_or_run(_spec(), context)
    assert not second.notes["reused"] and second.run_id != first.run_id
    assert second.notes["keyed_code"]["dataset"]["files"]["labdata/data.py"] != \
        keyed["files"]["labdata/data.py"]

    _forget_modules()
    (project / "train_script.py").write_text("print('edited, but no run imports it')\n")
    third = get_or_run(_spec(), context)
    assert third.notes["reused"] and third.run_id == second.run_id
