"""What a benchmark run prints and writes: a table with one row per loop (the reference loop and
each engine variant) of each case, greppable ``throughput`` lines, and the JSON document."""
from __future__ import annotations

import argparse

import torch

from bench.ceiling import ceiling_dtype
from bench.schedule import EPOCHS, STATES
from harness.environment import device_name, environment

COLUMNS = (("case", "case", "{}"), ("loop", "loop", "{}"), ("batch", "batch_size", "{:,}"),
           ("img/s", "img_per_s", "{:,.0f}"), ("vs reference", "ratio", "{:.2f}x"),
           ("MFU", "mfu", "{:.1%}"), ("epoch s", "epoch_seconds", "{:.2f}"),
           ("eval s", "eval_seconds", "{:.2f}"), ("warm-up s", "warmup_compile_seconds", "{:.1f}"),
           (f"{STATES}x{EPOCHS} min", "schedule_minutes", "{:.1f}"),
           ("(warm-up per state)", "schedule_minutes_warmup_every_state", "{:.1f}"),
           ("GPU MB", "peak_memory_mb", "{:,.0f}"))


def rows(result: dict) -> list[dict]:
    """The case's reference loop, then each engine variant, as table rows."""
    ref = result["reference"]
    out = [{"case": result["case"], "loop": f"reference ({result['reference_data']})",
            "batch_size": ref["batch_size"], "img_per_s": result["reference_img_per_s"], "ratio": 1.0,
            "mfu": result["reference_mfu"], "epoch_seconds": result["reference_epoch_seconds"],
            "warmup_compile_seconds": ref["warmup_s"],
            "schedule_minutes": result["reference_schedule_minutes"]}]
    for name, v in result["variants"].items():
        out.append({"case": result["case"], "loop": f"engine {name}", "batch_size": v["engine"]["batch_size"],
                    "img_per_s": v["engine_img_per_s"], **{k: v.get(k) for _, k, _ in COLUMNS[4:]}})
    return out


def table(results: list[dict]) -> str:
    lines = [[name for name, _, _ in COLUMNS]]
    for result in results:
        for row in rows(result):
            lines.append(["-" if row.get(key) is None else fmt.format(row[key]) for _, key, fmt in COLUMNS])
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    text = ["  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in lines]
    return "\n".join([text[0], "-" * len(text[0]), *text[1:]])


def metric_lines(result: dict) -> list[str]:
    keys = ("engine_img_per_s", "ratio", "mfu", "epoch_seconds", "warmup_compile_seconds",
            "schedule_minutes")
    return [f"throughput case={result['case']} variant={name} "
            f"reference_img_per_s={result['reference_img_per_s']:.4g} "
            + " ".join(f"{k}={v[k]:.4g}" for k in keys)
            for name, v in result["variants"].items()]


def document(device: torch.device, ceiling: float, args: argparse.Namespace, results: list[dict]) -> dict:
    doc = {"device": str(device), "device_name": device_name(device), "quick": args.quick,
           "compile": not args.no_compile, "matmul_ceiling_tflops": ceiling / 1e12,
           "matmul_ceiling_dtype": str(ceiling_dtype(device)).replace("torch.", ""),
           "float32_matmul_precision": torch.get_float32_matmul_precision(),
           "schedule": f"{STATES} states x {EPOCHS} epochs per method",
           "variants": {v.name: v.description for v in args.variant_list},
           "environment": environment(device), "cases": {r["case"]: r for r in results}}
    if results:  # the first case's engine figures at the top level (ViT-S/4 @32 on CUDA)
        doc.update({k: results[0][k] for k in ("engine_img_per_s", "reference_img_per_s", "ratio",
                                                "mfu", "epoch_seconds", "schedule_minutes")})
    return doc

