"""The demonstration set, built once per session (the trained run is reused from the store)."""
import pytest


@pytest.fixture(scope="session")
def demo_files(harness_session):
    from .demo import build_demo

    folder = harness_session.context.reports_dir / "fixtures" / "checkpoints"
    return build_demo(folder, harness_session.context)
