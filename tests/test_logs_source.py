"""Reading a log's bytes: line endings, undecodable bytes, an unfinished last line."""
from harness.logs import split_lines
from harness.logs.source import Tally


def test_every_line_ending_counts_and_the_unfinished_tail_is_set_aside():
    lines = split_lines(b"a\r\nb\nc\rd\n\ne", "x")
    assert [t for _, t in lines] == ["a", "b", "c", "d", ""]
    assert [n for n, _ in lines] == [1, 2, 3, 4, 5]
    assert lines.unfinished == "e"


def test_undecodable_lines_are_counted_and_decoded_with_replacement():
    lines = split_lines("ok\n\xff bad\n".encode("latin-1") + "é\n".encode("utf-8"))
    assert lines.undecodable == 1
    assert [t for _, t in lines] == ["ok", "\ufffd bad", "é"]
    assert lines.unfinished is None


def test_a_multibyte_character_cut_at_the_end_stays_in_the_unfinished_tail():
    lines = split_lines("line\n".encode() + "é".encode()[:1])
    assert lines.undecodable == 0 and lines.unfinished == "\ufffd"


def test_tally_counts_blank_lines_apart_and_quotes_few_examples():
    tally = Tally()
    for n in range(8):
        tally.miss(n, f"noise {n}")
    tally.miss(9, "   ")
    notes = tally.notes(split_lines(b""))
    assert (notes["lines_not_understood"], tally.blank) == (8, 1)
    assert notes["not_understood_examples"] == [f"line {n}: noise {n}" for n in range(5)]
