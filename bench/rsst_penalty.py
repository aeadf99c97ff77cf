"""RSST's penalty at the nightly budget on the real CIFAR-10, on a CPU: does the penalty drive the
channels it will cut towards zero within one state's training (5 epochs of the nightly recipe on
the whole training set)? The nightly pruning case (bundled suites) with ``vit_micro_patch4_32`` in
place of ViT-S/4 (which a 2-core CPU cannot train through 5 epochs of CIFAR-10 in hours), its
first ``--states`` states of the 15-state schedule towards 70% (the same per-state sparsity:
``final_sparsity`` is the 15-state schedule's at that state), judged by the pruning suite's own
``penalty`` check (the RMS of the channels to be cut over the kept ones' before the cut, at most
0.5).

    python -m bench.rsst_penalty --data-root ROOT [--states 2] [--threads 1]
        [--out bench/results/rsst_penalty_cpu.json]
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Optional

import torch

from harness import storage
from harness.environment import environment
from harness.runfolder import Finding, open_folder
from harness.runs import RunContext, get_or_run
from suites.profiles import PRUNING_CASES

NIGHTLY_RSST = next(c for c in PRUNING_CASES if c.profiles == ("nightly",) and c.name == "rsst")


def spec_for(states: int):
    nightly = NIGHTLY_RSST.spec.prune
    prune = replace(nightly, states=states, final_sparsity=round(nightly.sparsity_at(states), 6))
    return replace(NIGHTLY_RSST.spec, model="vit_micro_patch4_32", prune=prune,
                   label=f"cifar10 rsst, micro ViT, first {states} of the nightly states")


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", type=Path, required=True)
    p.add_argument("--states", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", type=Path, default=Path("reports/rsst_penalty"))
    p.add_argument("--out", type=Path, default=Path("bench/results/rsst_penalty_cpu.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    spec = spec_for(args.states)
    context = RunContext(device=torch.device("cpu"), reports_dir=args.work, data_root=args.data_root,
                         threads=args.threads, progress=False)
    record = get_or_run(spec, context)
    run = open_folder(context.store.path(record.run_id), data_root=args.data_root)
    verdicts = [o.verdict() for o in run.outcomes("penalty") if isinstance(o, Finding)]
    for v in verdicts:
        print(f"{'PASS' if v.passed else 'FAIL'} {v.id}: {v.line()}")
    storage.write_json(args.out, {
        "spec": spec.to_dict(), "run_id": record.run_id, "data": record.notes.get("data_source", ""),
        "states": [{"index": s.index, "best_accuracy": s.best_accuracy, "penalty": s.penalty}
                   for s in record.states],
        "verdicts": [v.to_dict() for v in verdicts], "environment": environment(torch.device("cpu")),
        "command": "python -m bench.rsst_penalty " + " ".join(sys.argv[1:])})
    return 0 if all(v.passed for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
