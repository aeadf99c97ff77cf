"""Training throughput: the harness's own loop against a reference-style loop, in one run.

    PYTHONPATH=. python bench/throughput.py                 # CUDA: ViT-S/4 @32 and ViT-S/16 @224
    PYTHONPATH=. python bench/throughput.py --quick         # small sizes (on CPU: the smoke model)
    options: --out FILE.json  --cases NAME[,NAME]  --variants NAME[,NAME]  --data-root DIR
             --no-compile  --threads N  --check  --profile-kernels DIR  --deadline-seconds S

Per case it measures (bench/loops.py)
  (a) a loop in the research group's style: fp32, eager, batch 128, SGD, explicit softmax attention
      (timm's non-fused path), ``.item()`` of loss and accuracy after every step;
  (b) the harness's own loop exactly as the engine runs it (``runs.batches_for``,
      ``train.training_forward`` and ``train.evaluation_forward``, compiled on CUDA, and
      ``train.train_phase``), in each variant asked for (bench/cases.py: torch.compile modes,
      channels-last, a larger batch as its own case). Epoch 0 is the warm-up (compilation): it is
      reported separately and excluded; throughput is measured over the following epochs, each
      timed after a synchronise, the loops alternating round by round. With
      ``--deadline-seconds``, a variant after the first whose cost (estimated from the first
      variant's compile and epoch, measured in this run) does not fit is left out, and said so
      (``variants_left_out`` in the JSON); a variant after the first that fails to compile or
      run is left out with its error, the others still measured.
It also measures the device's matmul ceiling (bench/ceiling.py) and counts training FLOPs per
image (bench/flops.py) to give MFU, and estimates the research group's budget, 16 states x 60
epochs per method, from the measured epoch (bench/schedule.py). Prints a table (bench/table.py),
greppable ``throughput`` lines and the verdict of each bar (judged on the ``default`` variant,
the engine as it trains); with ``--out FILE.json`` writes JSON there (after every case,
atomically), and no file at all without it; with ``--profile-kernels DIR`` writes the top-20
kernels of each variant's training step there (bench/kernels.py).
Without ``--data-root`` the CIFAR cases use random uint8 images of CIFAR-10's shape (50,000 train,
10,000 test): throughput does not depend on pixel values.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Optional

import torch

from bench.cases import CASES, DEFAULT_CASES, METRICS, VARIANTS, BenchCase
from bench.ceiling import ceiling_dtype, matmul_ceiling
from bench.flops import mfu, training_flops_per_image
from bench.kernels import write_kernel_table
from bench.loops import REFERENCE_DATA, measure
from bench.schedule import STATES, schedule_minutes
from bench.table import document, metric_lines, table
from bench.workload import bench_dataset, full_sizes
from harness import storage
from harness.environment import device_name
from harness.escape import json_safe
from harness.expect import Verdict


def run_case(case: BenchCase, device: torch.device, args: argparse.Namespace, ceiling: float) -> dict:
    dataset = bench_dataset(case, args.data_root)
    full_train, full_test = full_sizes(case)
    flops = training_flops_per_image(case, dataset, device)
    deadline = None if args.deadline_seconds is None else args.deadline_seconds - (time.perf_counter() - args.started)
    engines, reference, loops, left_out = measure(case, dataset, device, args.variant_list, not args.no_compile,
                                                  args.reference_data, args.reference_workers, deadline)
    for name, why in left_out.items():
        print(f"variant {name} of {case.name} left out: {why}", flush=True)
    ref_epoch_s = full_train / reference["img_per_s"]
    result = {"case": case.name, "model": case.model, "data": dataset.source, "device": str(device),
              "device_name": device_name(device), "reference_data": args.reference_data,
              "train_flops_per_image": flops, "epoch_images": full_train, "reference": reference,
              "reference_img_per_s": reference["img_per_s"],
              "reference_mfu": mfu(reference["img_per_s"], flops, ceiling),
              "reference_epoch_seconds": ref_epoch_s,
              "reference_warmup_seconds": reference["warmup_s"],
              "reference_schedule_minutes": schedule_minutes(ref_epoch_s, reference["warmup_s"]),
              "variants": {name: _variant_figures(engine, reference, flops, ceiling, full_train, full_test)
                           for name, engine in engines.items()},
              "variants_left_out": left_out}
    judged = "default" if "default" in result["variants"] else next(iter(result["variants"]))
    result.update({k: v for k, v in result["variants"][judged].items() if k != "engine"})
    result["figures_of_variant"] = judged
    result["bars"] = [v.to_dict() for v in judge(case, result, device)]
    if args.profile_kernels is not None:
        for engine in loops.values():
            write_kernel_table(args.profile_kernels, case.name, engine, device)
    return result


def _variant_figures(engine: dict, reference: dict, flops: float, ceiling: float, full_train: int,
                     full_test: int) -> dict:
    epoch_s = full_train / engine["img_per_s"]
    eval_s = full_test / engine["eval_img_per_s"]
    return {"engine": engine, "engine_img_per_s": engine["img_per_s"],
            "ratio": engine["img_per_s"] / reference["img_per_s"],
            "mfu": mfu(engine["img_per_s"], flops, ceiling), "epoch_seconds": epoch_s,
            "eval_seconds": eval_s, "warmup_compile_seconds": engine["warmup_s"],
            "schedule_minutes": schedule_minutes(epoch_s + eval_s, engine["warmup_s"]),
            "schedule_minutes_warmup_every_state": schedule_minutes(epoch_s + eval_s, engine["warmup_s"], STATES),
            "peak_memory_mb": engine["peak_memory_mb"]}


def judge(case: BenchCase, result: dict, device: torch.device) -> list[Verdict]:
    """The case's bars on the ``default`` variant (the engine as it trains); none where the
    bars are CUDA-only and the run is not, or where the default variant was not run."""
    if (case.cuda_bars and device.type != "cuda") or result["figures_of_variant"] != "default":
        return []
    evidence = {"device": result["device_name"], "variant": "default", "case": case.name}
    return [bar.evaluate(METRICS[bar.id.rsplit("/", 1)[1]](result), evidence)
            for bar in case.bars]


def _names(text: Optional[str], known: dict, option: str, parser: argparse.ArgumentParser) -> list:
    names = text.split(",") if text else []
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"{option}: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
    return names


def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--cases", default=None, help=f"comma-separated, from {', '.join(CASES)} "
                   "(default: the ViT-S cases on CUDA, smoke on CPU)")
    p.add_argument("--variants", default="default", help="comma-separated engine variants to compare, "
                   f"from {', '.join(VARIANTS)} (default: default)")
    p.add_argument("--quick", action="store_true", help="small sizes: a few batches per epoch")
    p.add_argument("--data-root", type=Path, default=None, help="real CIFAR-10 here (default: random uint8)")
    p.add_argument("--no-compile", action="store_true", help="engine without torch.compile")
    p.add_argument("--reference-data", choices=REFERENCE_DATA, default=None,
                   help="the reference loop's data: device (prepared once on the device; default on "
                        "CUDA, a conservative ratio) or loader (per-image torchvision transforms in a "
                        "DataLoader, the research group's style; default on CPU)")
    p.add_argument("--reference-workers", type=int, default=0, help="DataLoader workers of --reference-data loader")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=None,
                   help="write the figures as JSON here (default: print only, write no file)")
    p.add_argument("--profile-kernels", type=Path, default=None, metavar="DIR",
                   help="write the top-20 kernels of each variant's training step (torch.profiler) to DIR")
    p.add_argument("--check", action="store_true", help="exit 1 when a case misses a bar")
    p.add_argument("--deadline-seconds", type=float, default=None, metavar="S",
                   help="leave out a variant (after the first) whose cost, estimated from the first "
                        "variant's compile and epoch measured in this run, would end the run past S "
                        "seconds from its start (default: run every variant)")
    args = p.parse_args(argv)
    args.started = time.perf_counter()
    if args.deadline_seconds is not None and args.deadline_seconds < 0:
        p.error(f"--deadline-seconds must be >= 0, got {args.deadline_seconds}")
    args.device = device_option(args.device, p)
    args.reference_data = args.reference_data or ("device" if args.device.type == "cuda" else "loader")
    cases = _names(args.cases, CASES, "--cases", p) or list(DEFAULT_CASES[args.device.type])
    args.variant_list = [VARIANTS[n] for n in _names(args.variants, VARIANTS, "--variants", p)]
    if not args.variant_list:
        p.error(f"--variants: name at least one, from {', '.join(VARIANTS)}")
    args.case_list = [CASES[n].quick() if args.quick else CASES[n] for n in cases]
    return args


def device_option(text, parser):
    """The device the harness would pick (cuda when available), checked the way it checks it."""
    from harness.options import OptionError, check_device

    try:
        return check_device(text)
    except OptionError as exc:
        parser.error(str(exc))


def main(argv: Optional[list] = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    big = device.type == "cuda" and not args.quick
    ceiling = matmul_ceiling(device, 8192 if big else 512, 50 if big else 5)
    print(f"device {device_name(device)}: {ceiling_dtype(device)} matmul ceiling "
          f"{ceiling / 1e12:.3g} TFLOP/s", flush=True)
    results = []
    for case in args.case_list:
        t0 = time.perf_counter()
        results.append(run_case(case, device, args, ceiling))
        for line in metric_lines(results[-1]):
            print(line + f" wall_s={time.perf_counter() - t0:.1f}", flush=True)
        if args.out is not None:
            storage.write_json(args.out, json_safe(document(device, ceiling, args, results)))
    print(table(results))
    return _report(results, args)


def _report(results: list[dict], args: argparse.Namespace) -> int:
    missed = 0
    for r in results:
        for verdict in map(Verdict.from_dict, r["bars"]):
            print(f"{'PASS' if verdict.passed else 'FAIL'} {verdict.id}: {verdict.line()}")
            missed += not verdict.passed
    print(f"wrote {args.out}" if args.out is not None else "no --out given: no JSON written")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
