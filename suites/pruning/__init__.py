"""Pruning suite: Refill and RSST per state, from the stored files."""
