"""Pruning: masks, magnitude IMP, Refill, RSST, and the checks the suites make on their results."""
