"""Baseline suite: State 0 of each profile case, and the pretrained start."""
