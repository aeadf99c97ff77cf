"""Root conftest: the harness plugin itself is loaded through its pytest11 entry point
(installed by `pip install -e .`); here only pytest's own pytester is enabled for tests/."""
pytest_plugins = ["pytester"]
