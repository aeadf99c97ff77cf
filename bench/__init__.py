"""Benchmarks of the harness (runnable as scripts: `PYTHONPATH=. python bench/throughput.py`)."""
