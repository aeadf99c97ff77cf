"""The seed's scenario on the real CIFAR-10 bytes, through the documented route
(docs/baseline.md: "The seed's scenario on the real CIFAR-10, on a CPU"): the data root from the npm
package, the two init files from fixtures.transfer_init, `pytest` in examples/real_cifar. The
random file under the "pretrained" name fails its forensics and its first epoch; the backbone
trained on classes 0-4 passes its first epoch on classes 5-9."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fixtures import transfer_init
from harness.data.npm_cifar import build_root
from harness.runs import RunContext
from tests.test_cifar_binary import needs_package, package_path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "real_cifar"


def test_the_example_judges_with_the_calibrated_recipe():
    import importlib.util

    spec = importlib.util.spec_from_file_location("real_cifar_example", EXAMPLE / "tests" / "test_seed_scenario.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.RECIPE == transfer_init.SEED_RECIPE
    assert set(example.FILES.values()) == {transfer_init.RANDOM_FILE, transfer_init.TRAINED_FILE}


@pytest.mark.slow
@needs_package
def test_random_pretrained_file_fails_and_trained_backbone_passes_on_real_cifar(tmp_path):
    build_root(tmp_path / "data", package_path(), batches=(1,))
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("reports", "init_model", "__pycache__"))
    context = RunContext(device=torch.device("cpu"), reports_dir=tmp_path / "reports",
                         data_root=tmp_path / "data", progress=False)
    made = transfer_init.build_inits(project / "init_model", context)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "pytest", "--harness-data-root", str(tmp_path / "data"),
                           "--harness-no-progress", "-q"], cwd=project, env=env,
                          capture_output=True, text=True, check=False)
    verdicts = {v["id"]: v for v in json.loads((project / "reports" / "latest" / "report.json")
                                               .read_text())["verdicts"]}
    assert done.returncode == 1, done.stdout[-3000:]
    assert not verdicts["seed/random_init/init/pretrained"]["passed"]
    assert not verdicts["seed/random_init/state0/pretrained_start"]["passed"]
    assert verdicts["seed/backbone_init/state0/pretrained_start"]["passed"], made
    assert "observed" in done.stdout and "vs expected >= " in done.stdout
