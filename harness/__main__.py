"""``python -m harness``: the ``harness`` command (harness.cli)."""
import sys

from harness.cli import main

sys.exit(main())
