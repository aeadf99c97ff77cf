"""reported_accuracy feeds a lab's model its images as the lab's dataset factory declares (its
mean/std or transform), and its line names the preprocessing it used. A real lab project written
here: its model module and dataset factory, a model trained on normalised digits, a run folder
in the research group's format with the accuracy its log reports."""
import argparse
import sys

import pytest
import torch

from harness.data import DataError, load_dataset
from harness.runfolder import open_folder

MEAN, STD = 0.3056, 0.3230          # what the lab normalised the digits with

LAB = f'''
import torch
from torch import nn


class LabNet(nn.Module):
    def __init__(self, num_classes=10, in_chans=1, image_size=8):
        super().__init__()
        self.fc1 = nn.Linear(in_chans * image_size * image_size, 32)
        self.head = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.head(torch.relu(self.fc1(x.flatten(1))))


def net(num_classes=10, in_chans=1, image_size=8):
    return LabNet(num_classes, in_chans, image_size)


def _digits():
    from harness.data import load_dataset

    d = load_dataset("digits")
    return {{"train": (d.train.images, d.train.labels), "test": (d.test.images, d.test.labels)}}


def digits_normalised(data_root=None):
    """The lab's pipeline: ToTensor, then Normalize(mean, std)."""
    return dict(_digits(), mean=[{MEAN}], std=[{STD}])


def digits_as_given(data_root=None):
    """The same images, no preprocessing declared."""
    return _digits()


def digits_transformed(data_root=None):
    return dict(_digits(), transform=lambda x: (x - {MEAN}) / {STD})
'''


@pytest.fixture(scope="module")
def lab_project(tmp_path_factory):
    """The lab's project on sys.path."""
    root = tmp_path_factory.mktemp("lab")
    (root / "labnorm.py").write_text(LAB)
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))
    sys.modules.pop("labnorm", None)


@pytest.fixture(scope="module")
def lab(lab_project):
    """The lab's run folder: its model trained on normalised digits, the accuracy its own
    evaluation printed as the state's best SA."""
    import labnorm

    root = lab_project
    torch.manual_seed(0)
    model = labnorm.net()
    data = load_dataset("digits")
    x = (data.train.images.float() / 255 - MEAN) / STD
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), data.train.labels).backward()
        opt.step()
    with torch.no_grad():
        test = (data.test.images.float() / 255 - MEAN) / STD
        reported = 100.0 * float((model(test).argmax(1) == data.test.labels).float().mean())
    folder = root / "run"
    folder.mkdir()
    torch.save({"state_dict": model.state_dict(), "result": {"ta": [reported], "test_ta": [reported]}},
               folder / "0checkpoint.pth.tar")
    args = argparse.Namespace(dataset="digits", arch="lab", seed=1, save_dir="run", epochs=1,
                              pruning_times=1, rate=0.5, prune_type="lt", struct="refill")
    (folder / "train.log").write_text(f"{args!r}\n" + "\n".join([
        "*" * 42, "pruning state 0", "*" * 42, "Remaining weights: 100.00%",
        f"valid_accuracy {reported:.3f}", f"* best SA={reported:.2f}"]) + "\n")
    return folder, reported


def _reported_accuracy(folder, dataset: str):
    run = open_folder(folder, model="labnorm:net", dataset=dataset)
    return next(o for o in run.outcomes("reported_accuracy") if o.state == 0)


@pytest.mark.slow
def test_the_labs_declared_normalisation_reproduces_its_reported_accuracy(lab):
    folder, reported = lab
    assert reported > 90
    for dataset in ("labnorm:digits_normalised", "labnorm:digits_transformed"):
        outcome = _reported_accuracy(folder, dataset)
        verdict = outcome.verdict()
        assert verdict.passed, verdict.line()
        assert outcome.observed == pytest.approx(reported, abs=0.01)
    normalised = _reported_accuracy(folder, "labnorm:digits_normalised").evidence["preprocessing"]
    assert normalised == ("x / 255 normalised by mean (0.3056) std (0.323) (declared by dataset "
                          "'labnorm:digits_normalised')")
    transformed = _reported_accuracy(folder, "labnorm:digits_transformed").evidence["preprocessing"]
    assert transformed.startswith("x / 255 then transform labnorm.digits_transformed.<locals>.<lambda>")


@pytest.mark.slow
def test_without_a_declared_preprocessing_the_failing_line_says_what_the_model_was_fed(lab):
    """The report's case: the model learned normalised inputs, the check fed it [0, 1] and its
    line did not say so."""
    folder, reported = lab
    outcome = _reported_accuracy(folder, "labnorm:digits_as_given")
    verdict = outcome.verdict()
    assert not verdict.passed and outcome.observed < reported - 10
    print(f"reported {reported:.2f}%, evaluated on [0, 1]: {outcome.observed:.2f}%")
    assert ("model inputs: images in [0, 1], x / 255 as ToTensor gives them (dataset "
            "'labnorm:digits_as_given' declares no mean/std or transform; declare them in its "
            "factory if the run normalised its inputs)") in verdict.line()


@pytest.mark.parametrize("extra, message", [
    ("mean=[0.3]", r"gives mean without std; give both \(per channel, in \[0, 1\]\) or neither"),
    ("mean=[0.3, 0.3], std=[0.3, 0.3]", r"mean must be 1 number\(s\), one per channel .*got \[0.3, 0.3\]"),
    ("mean=[0.3], std=[0]", r"std must be 1 number\(s\), one per channel and > 0 .*got \[0\]"),
    ("transform='normalise'", r"transform must be a callable .*got a str")])
def test_a_declaration_that_cannot_be_used_is_one_line_naming_it(lab_project, tmp_path, monkeypatch, extra, message):
    (tmp_path / "labbad.py").write_text(f"from labnorm import _digits\n\n\ndef data():\n"
                                        f"    return dict(_digits(), {extra})\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "labbad", raising=False)
    with pytest.raises(DataError, match=r"^dataset 'labbad:data': " + message):
        load_dataset("labbad:data")
