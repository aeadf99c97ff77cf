"""The top kernels of the engine's training step, from ``torch.profiler``: a few steps of one
epoch recorded after a warm-up step, the operators and kernels ranked by their own device time
(CPU time on a CPU), as the table ``torch.profiler`` prints."""
from __future__ import annotations

from pathlib import Path

import torch

from bench.loops import EngineLoop
from harness import storage
from harness.environment import device_name
from harness.train import PhaseHooks

ROWS = 20
ACTIVE_STEPS = 5


def _sort_key(averages, device: torch.device) -> str:
    """torch >= 2.5 names device time ``self_device_time_total``; 2.4 names it ``self_cuda_time_total``."""
    if device.type != "cuda":
        return "self_cpu_time_total"
    sample = averages[0] if len(averages) else None
    return "self_device_time_total" if hasattr(sample, "self_device_time_total") else "self_cuda_time_total"


def kernel_table(engine: EngineLoop, device: torch.device, rows: int = ROWS) -> str:
    """Profile up to :data:`ACTIVE_STEPS` training steps of one epoch of ``engine`` (after one
    warm-up step) and return the ``rows`` operators/kernels with the most self time."""
    from torch.profiler import ProfilerActivity, profile, schedule

    steps = len(engine.train)
    warmup = 1 if steps > 1 else 0
    active = max(1, min(ACTIVE_STEPS, steps - warmup))
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities, schedule=schedule(wait=0, warmup=warmup, active=active, repeat=1)) as prof:
        engine.epoch(hooks=PhaseHooks(after_step=prof.step))
    averages = prof.key_averages()
    key = _sort_key(averages, device)
    head = (f"top {rows} by {key} over {active} training step(s) of {engine.spec.label} "
            f"(batch {engine.train.batch_size}) on {device_name(device)}, torch {torch.__version__}")
    return head + "\n" + averages.table(sort_by=key, row_limit=rows)


def write_kernel_table(folder: Path, case: str, engine: EngineLoop, device: torch.device) -> Path:
    """The table of :func:`kernel_table` as ``kernels_<case>_<variant>.txt`` in ``folder``."""
    path = Path(folder) / f"kernels_{case}_{engine.variant.name}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    return storage.write_text(path, kernel_table(engine, device) + "\n")
