"""Shared fixtures of the harness's own tests."""
import pytest

from harness.threads import cpu_threads


@pytest.fixture
def one_thread():
    """Train on one intra-op thread: on a small shared CPU, two threads spin against each other."""
    with cpu_threads(1):
        yield
