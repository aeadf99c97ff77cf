"""The documentation site (docs/, mkdocs.yml) says what the code does: the options page is built
from harness/options.py and lists every option, and every log sample on the logs page reads as
the page says."""
import re
from pathlib import Path

import pytest

from harness.logs.registry import parse_log
from harness.options import OPTIONS
from harness.doctables import MARKER, fill

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SAMPLE = re.compile(r"<!-- sample: (\S+)(?: (\S+) ([\d.]+))? -->\n```\w*\n(.*?)\n```", re.S)


def _missing(rows: list) -> list:
    """The options of OPTIONS without their own row in ``rows`` (each a list of cell texts:
    option, short form, ini key, ...)."""
    missing = []
    for spec in OPTIONS:
        def listed(cells, spec=spec):
            flag = cells[0].split()[0] if cells[0].split() else ""
            flag_ok = flag == spec.flag if spec.cli else cells[0] == "(ini only)"
            return flag_ok and (spec.ini_key == cells[2].split()[0] if spec.ini else not cells[2])
        if not any(listed(cells) for cells in rows):
            missing.append(spec.flag if spec.cli else spec.ini_key)
    return missing


def _markdown_rows(page: str) -> list:
    return [[c.replace("`", "").strip() for c in line.strip("|").split(" | ")]
            for line in page.splitlines() if line.startswith("| ")][1:]


def _html_rows(page: str) -> list:
    table = page[page.index("<th>option</th>"):]
    table = table[:table.index("</table>")]
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)]


def test_the_options_page_is_generated_not_written_by_hand():
    source = (DOCS / "options.md").read_text()
    assert source.count(MARKER) == 1
    assert not [line for line in source.splitlines() if line.startswith("|")], "a hand-written table"
    assert _missing(_markdown_rows(fill(source))) == []


def test_the_built_options_page_lists_every_option(tmp_path):
    """Builds the site as CI does (strict) and reads the options table of the page it wrote."""
    pytest.importorskip("mkdocs", reason="pip install -e '.[dev]' (mkdocs builds the docs site)")
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    config = load_config(config_file=str(ROOT / "mkdocs.yml"), site_dir=str(tmp_path / "site"))
    assert config["strict"] is True
    build(config)
    rows = _html_rows((tmp_path / "site" / "options" / "index.html").read_text())
    assert len(rows) == len(OPTIONS)
    assert _missing(rows) == [], "options missing from the built options page"


def test_every_log_sample_reads_as_its_page_says(tmp_path):
    samples = SAMPLE.findall((DOCS / "logs.md").read_text())
    assert len(samples) >= 7
    for name, _, _, text in samples:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    formats = set()
    for name, fmt, best, _ in samples:
        if not fmt:
            continue
        path = tmp_path / name
        record = parse_log(path.parent if fmt == "timm" else path)
        assert record.source == f"log:{fmt}", name
        assert round(record.states[0].best_accuracy, 2) == float(best), name
        formats.add(fmt)
    assert formats == {"research", "imagenet-example", "mllog", "timm", "pytorch-examples", "epoch-acc"}


def test_every_page_is_in_the_navigation_and_notes_stay_out():
    config = (ROOT / "mkdocs.yml").read_text()
    pages = {p.name for p in DOCS.glob("*.md")}
    assert pages and all(f": {name}" in config for name in pages), pages
    assert "notes/" in config.split("exclude_docs:")[1].split("\n\n")[0]
