"""GPU placement of pytest-xdist workers: each worker gets its own GPU through
``CUDA_VISIBLE_DEVICES``, round-robin over the GPUs the controller sees."""
from __future__ import annotations

import re
from typing import Optional

_WORKER = re.compile(r"^gw(\d+)$")


class PlacementError(ValueError):
    """A worker id or device list the placement cannot use."""


def gpu_count() -> int:
    """CUDA GPUs this process sees (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def worker_index(worker_id: str) -> int:
    """``gw3`` -> 3 (pytest-xdist's worker ids)."""
    match = _WORKER.match(worker_id)
    if not match:
        raise PlacementError(f"xdist worker id must look like gw<N>, got {worker_id!r}")
    return int(match[1])


def visible_pool(visible: Optional[str], count: int) -> list[str]:
    """The GPUs a controller may hand out: its own ``CUDA_VISIBLE_DEVICES`` list when set
    (ids or UUIDs), else ``0 .. count-1``."""
    if visible is not None and visible.strip():
        return [d.strip() for d in visible.split(",") if d.strip()]
    return [str(i) for i in range(count)]


def worker_devices(worker_id: str, visible: Optional[str], count: int) -> Optional[str]:
    """The ``CUDA_VISIBLE_DEVICES`` of worker ``worker_id``; None when there is no GPU to pin."""
    pool = visible_pool(visible, count)
    if not pool:
        return None
    return pool[worker_index(worker_id) % len(pool)]


def scope_of(nodeid: str) -> str:
    """The group of a test under xdist: its ``xdist_group`` suffix where pytest kept it, else
    the parameter id of a parametrized test (a harness case: the tests of one run share it),
    else its module."""
    if "@" in nodeid:
        return nodeid.rsplit("@", 1)[1]
    if nodeid.endswith("]") and "[" in nodeid:
        return nodeid[nodeid.rindex("[") + 1:-1]
    return nodeid.split("::", 1)[0]


def case_scheduler(config, log):
    """xdist's scope scheduling, scoped by :func:`scope_of`."""
    from xdist.scheduler import LoadScopeScheduling

    class CaseScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return CaseScheduling(config, log)
