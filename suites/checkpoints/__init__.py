"""Checkpoint suite: files that claim to be pretrained, judged from their weights."""
