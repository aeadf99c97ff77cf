"""harness: executable expectations for deep-learning training and pruning runs."""
__version__ = "0.2.0"
