"""The README (a short front page) and the docs site it points into tell a new user the truth about
what they have: no pointer to files outside the repository, every harness model `--arch` accepts,
the install and test commands CI runs, links that resolve."""
import re
from pathlib import Path

from harness.models import MODELS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
DOCS = {p.name: p.read_text() for p in (ROOT / "docs").glob("*.md")}


def test_no_pointer_to_files_a_user_does_not_have():
    sources = [README, *DOCS.values()] + [p.read_text() for p in (ROOT / "harness").rglob("*.py")]
    for text in sources:
        assert "../shared" not in text and "seed/000_" not in text


def test_every_harness_model_is_named_for_arch():
    forensics = DOCS["forensics.md"]          # where `harness inspect --arch` is documented
    assert "--arch" in forensics
    for name in MODELS:
        assert f"`{name}`" in forensics, name


def test_the_install_and_test_commands_are_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    for page in (README, DOCS["getting-started.md"]):
        assert 'pip install -e ".[dev]"' in page and 'pip install -e ".[dev' in ci
        assert "--index-url https://download.pytorch.org/whl/cpu" in page   # CPU-only machines
    assert re.search(r"^pytest\s", README, re.M) and "python3 -m pytest" in ci
    assert "mkdocs build --strict" in ci and "mkdocs" in (ROOT / "pyproject.toml").read_text()


def test_the_readme_is_a_short_front_page_whose_links_resolve():
    assert len(README.splitlines()) < 200
    first_screen = "\n".join(README.splitlines()[:40])
    assert "$ harness watch -- python3 -m fixtures.group_train" in first_screen
    assert "watch: the run was stopped for a failing verdict" in README
    links = re.findall(r"\]\((docs/[^)#]+)(?:#[^)]*)?\)", README)
    assert {Path(link).name for link in links} >= set(DOCS), "a docs page the README does not point to"
    for link in links:
        assert (ROOT / link).is_file(), link
