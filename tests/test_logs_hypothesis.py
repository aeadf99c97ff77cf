"""Properties of every parser: arbitrary text and arbitrary truncations of real logs never raise
and never invent a state; a truncated log reads as a prefix of the whole one."""
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.logs import SAMPLE_LOG, SEED_RUN, mllog, research_log, write_timm_folder
from harness.logs import split_lines, to_record
from harness.logs import mllog as mllog_parser
from harness.logs import research, timm

PARSERS = {"research": research.parse, "mllog": mllog_parser.parse, "timm": timm.parse}
GROUP_MAIN = sorted((Path(__file__).parent / "data" / "group_main").glob("*.log"))
REAL = {"research": [SAMPLE_LOG.read_bytes(), research_log(SEED_RUN).encode(),
                     *(p.read_bytes() for p in GROUP_MAIN)],
        "mllog": [mllog(SEED_RUN).encode()]}
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _record(fmt: str, data: bytes):
    lines = split_lines(data, "<hypothesis>")
    return to_record(fmt, lines, PARSERS[fmt](lines))


def _timm_summary(tmp_path_factory) -> bytes:
    return (write_timm_folder(SEED_RUN, tmp_path_factory.mktemp("timm")) / "summary.csv").read_bytes()


def _epochs(state) -> list:
    return [repr(e) for e in state.epochs]   # repr: nan equals nan


def _assert_prefix(part, whole) -> None:
    assert [s.index for s in part.states] == [s.index for s in whole.states][:len(part.states)]
    for p, w in zip(part.states, whole.states):
        assert _epochs(p) == _epochs(w)[:len(p.epochs)]
        assert p.intra_epoch == w.intra_epoch[:len(p.intra_epoch)]
        assert p.first_batch_loss in (None, w.first_batch_loss)


@FAST
@given(data=st.binary(max_size=2000) | st.text(max_size=2000).map(str.encode)
       | st.text(max_size=300).map(lambda t: f"Namespace({t})\n:::MLLOG {t}\nepoch,{t}\n".encode()),
       fmt=st.sampled_from(sorted(PARSERS)))
def test_arbitrary_bytes_never_raise_nor_invent_states(data, fmt):
    record = _record(fmt, data)
    text = data.decode("utf-8", errors="replace")
    if fmt == "research":
        headers = set(map(int, re.findall(r"pruning state\s+(\d{1,9})", text)))
        assert {s.index for s in record.states} <= headers
    elif fmt == "mllog":
        assert len(record.states) <= (1 if ":::MLLOG" in text else 0)
    else:
        assert len(record.states) <= (1 if re.search(r"(^|[\r\n])\s*\"?epoch\b", text) else 0)
    assert record.notes["lines_not_understood"] <= record.notes["lines_total"]


@FAST
@given(data=st.data())
def test_truncated_real_logs_read_as_prefixes(data, tmp_path_factory):
    fmt = data.draw(st.sampled_from(["research", "mllog", "timm"]))
    whole = REAL[fmt][data.draw(st.integers(0, len(REAL[fmt]) - 1))] if fmt != "timm" \
        else _timm_summary(tmp_path_factory)
    cut = data.draw(st.integers(0, len(whole)))
    _assert_prefix(_record(fmt, whole[:cut]), _record(fmt, whole))


@FAST
@given(noise=st.lists(st.text(alphabet=st.characters(blacklist_characters="\r\n"), max_size=80),
                      max_size=30),
       where=st.lists(st.integers(0, 10_000), max_size=30))
def test_noise_lines_add_no_state(noise, where):
    lines = research_log(SEED_RUN).split("\n")
    for text, at in zip(noise, where):
        lines.insert(at % len(lines), text)
    clean = _record("research", research_log(SEED_RUN).encode())
    record = _record("research", "\n".join(lines).encode("utf-8", "surrogatepass"))
    assert [s.index for s in record.states] == [s.index for s in clean.states]


_LITERALS = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)


@FAST
@given(args=st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,11}", fullmatch=True), _LITERALS,
                            max_size=12))
def test_a_namespace_line_reads_back_the_arguments_argparse_printed(args):
    """The linear scanner reads what argparse's repr printed exactly as a Python literal would."""
    line = "Namespace(" + ", ".join(f"{k}={v!r}" for k, v in args.items()) + ")\n"
    record = _record("research", line.encode("utf-8", "surrogatepass"))
    assert record.spec["args"] == args
    assert record.notes["arguments_cut"] == []
