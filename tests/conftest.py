"""Shared fixtures of the harness's own tests."""
import pytest

# The plugin imports torch only once a harness session needs it, so the first import of torch,
# torchvision, timm and dynamo could happen inside an in-process pytester run, whose end removes
# the modules it imported from sys.modules; importing them again would register torch's C++
# operator libraries twice. Import them here, once, for the whole test process.
import harness.models  # noqa: E402,F401  (torch, torchvision, timm, torch._dynamo)

from harness.threads import cpu_threads

# A user's project kept as test data: its own tests run in a copy of it, with its own ini file
# (tests/test_lab_project.py), never as tests of the harness's session.
collect_ignore = ["data/lab_project"]


@pytest.fixture
def one_thread():
    """Train on one intra-op thread: on a small shared CPU, two threads spin against each other."""
    with cpu_threads(1):
        yield
