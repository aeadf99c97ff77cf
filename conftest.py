"""Root conftest: the harness plugin itself is loaded through its pytest11 entry point
(installed by `pip install -e .`); here only pytest's own pytester is enabled for tests/."""
pytest_plugins = ["pytester"]


def pytest_collection_modifyitems(config, items):
    """The bundled suites train real models (minutes on two cores): in the `slow` tier."""
    import pytest

    suites = config.rootpath / "suites"
    for item in items:
        if suites in item.path.parents:
            item.add_marker(pytest.mark.slow)
