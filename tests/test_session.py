"""Option validation at the edge: each user mistake is one line naming what to change."""
import pytest

from harness.session import OptionError, Options, resolve


def test_auto_is_smoke_without_cuda_and_nightly_with_it(tmp_path):
    assert resolve(Options(), cuda_available=False).profile.name == "smoke"
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-100-python").mkdir()
    init = tmp_path / "init.pth"
    init.write_bytes(b"x")
    r = resolve(Options(data_root=tmp_path, init=str(init)), cuda_available=True)
    assert r.profile.name == "nightly" and r.device.type == "cuda"
    assert all(c.spec.init == str(init.resolve()) for c in r.profile.cases)


@pytest.mark.parametrize("options, cuda, message", [
    (Options(profile="nightly"), False, "--profile nightly needs a CUDA GPU"),
    (Options(profile="nightly"), True, "pass --data-root DIR"),
    (Options(profile="nightly", data_root="/nonexistent"), True, "is not a directory"),
    (Options(profile="smoke", expect=("nonsense",)), False, "expected the form ID>=VALUE"),
    (Options(profile="smoke", expect=("baseline/nope/state0/accuracy>=1",)), False,
     "no verdict id 'baseline/nope/state0/accuracy' in profile smoke; known ids: baseline/digits"),
    (Options(init="/no/such.pth"), False, "--init '/no/such.pth': no such file"),
    (Options(device="cuda"), False, "no CUDA GPU is visible"),
    (Options(device="tpu"), False, "--device 'tpu'"),
])
def test_user_mistakes_are_one_line(options, cuda, message):
    with pytest.raises(OptionError) as err:
        resolve(options, cuda_available=cuda)
    text = str(err.value)
    assert message in text and "\n" not in text


def test_nightly_without_init_names_the_option(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-100-python").mkdir()
    with pytest.raises(OptionError, match="pass --init FILE"):
        resolve(Options(profile="nightly", data_root=tmp_path), cuda_available=True)


def test_expect_override_replaces_the_bar():
    r = resolve(Options(expect=("baseline/digits/state0/accuracy>=99.5",)), cuda_available=False)
    assert r.profile.bar("baseline/digits/state0/accuracy").threshold == 99.5
