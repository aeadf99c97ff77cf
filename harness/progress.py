"""Progress bars for long runs: images/s and ETA (tqdm), silent when disabled."""
from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator, Optional


@contextlib.contextmanager
def progress_bar(total: int, desc: str, enabled: bool = True) -> Iterator[Optional[Callable[[int], None]]]:
    """Yield ``update(n_images)`` for a bar counting images, or None when disabled."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit="img", unit_scale=True, leave=False,
              file=sys.stderr, mininterval=0.5, dynamic_ncols=True) as bar:
        yield bar.update
