"""Runs judged while they train (``harness watch``): a log followed as it is written, or the
user's command run and its output followed; each verdict said as soon as its evidence exists,
and a doomed run stopped in its first epoch."""
from harness.watch.follower import Follower
from harness.watch.watcher import Settings, Watch

__all__ = ["Follower", "Settings", "Watch"]
