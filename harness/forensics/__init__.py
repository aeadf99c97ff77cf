"""Checkpoint forensics: safe reading of weight files and the random-init verdict."""
