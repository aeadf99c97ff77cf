"""Parsers of external training logs: each turns a log into the RunRecord the engine produces."""
from harness.logs.registry import FORMATS, detect, parse_log, to_record
from harness.logs.source import LogError, LogLines, read_lines, split_lines

__all__ = ["FORMATS", "LogError", "LogLines", "detect", "parse_log", "read_lines",
           "split_lines", "to_record"]
