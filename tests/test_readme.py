"""The README tells a new user the truth about what they have: no pointer to files outside the
repository, every harness model `--arch` accepts, the install and test commands CI runs."""
import re
from pathlib import Path

from harness.models import MODELS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_no_pointer_to_files_a_user_does_not_have():
    sources = [README] + [p.read_text() for p in (ROOT / "harness").rglob("*.py")]
    for text in sources:
        assert "../shared" not in text and "seed/000_" not in text


def test_every_harness_model_is_named_for_arch():
    for name in MODELS:
        assert f"`{name}`" in README, name


def test_the_install_and_test_commands_are_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -e ".[dev]"' in README and 'pip install -e ".[dev' in ci
    assert re.search(r"^pytest\s", README, re.M) and "python3 -m pytest" in ci
    assert "--index-url https://download.pytorch.org/whl/cpu" in README   # CPU-only machines
