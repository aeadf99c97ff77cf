"""The lab's pruning script: iterative magnitude pruning with torch.nn.utils.prune (a global L1
cut of RATE of the remaining conv and linear weights each round, the kept weights rewound to the
init, then retrained), saving ``state{k}_checkpoint.pth.tar`` per round and a ``log.txt``:

    # lab imp | method=imp scope=global rate=0.3 rounds=3
    round 1: 70.00% of weights left, val_top1=0.8611

Round LIE is the lab's bug: it saves a dense model (trained from the init, never cut) while its
log line says the round's sparsity.

    python prune.py --out runs/prune
"""
import argparse
import os

import torch
import torch.nn.utils.prune as prune

import labdata
import labnet
from train import top1

RATE, ROUNDS, LIE = 0.3, 3, 3


def arguments():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--out", default="runs/prune")
    return p.parse_args()


def fit(model, x, y, epochs, lr):
    """SGD with momentum and no weight decay, a fresh optimiser each round: a pruned entry of
    weight_orig gets no gradient and keeps the value it was rewound to."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for _ in range(epochs):
        order = torch.randperm(len(y))
        for start in range(0, len(y), 64):
            idx = order[start:start + 64]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


def prunable(model):
    return [(m, "weight") for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]


def left(model) -> float:
    masks = [getattr(m, "weight_mask", torch.ones_like(m.weight)) for m, _ in prunable(model)]
    return 100.0 * sum(float(m.sum()) for m in masks) / sum(m.numel() for m in masks)


def rewind(model, init):
    names = {m: n for n, m in model.named_modules()}
    with torch.no_grad():
        for module, _ in prunable(model):
            module.weight_orig.copy_(init[f"{names[module]}.weight"])


def main():
    args = arguments()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    data = labdata.digits16()
    (x, y), (x_val, y_val) = labdata.tensors(data["train"]), labdata.tensors(data["test"])
    os.makedirs(args.out, exist_ok=True)
    model = labnet.labnet()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save({"state_dict": init}, os.path.join(args.out, "init.pth.tar"))
    lines = [f"# lab imp | method=imp scope=global rate={RATE} rounds={ROUNDS}"]
    for k in range(ROUNDS + 1):
        saved, claimed = model, None
        if k == LIE:                                  # the bug: a dense model, the round's claim
            saved = labnet.labnet()
            saved.load_state_dict(init)
            claimed = 100 * (1 - RATE) ** k
        elif k > 0:
            prune.global_unstructured(prunable(model), pruning_method=prune.L1Unstructured, amount=RATE)
            rewind(model, init)
        fit(saved, x, y, args.epochs, args.lr)
        torch.save({"state_dict": saved.state_dict(), "round": k},
                   os.path.join(args.out, f"state{k}_checkpoint.pth.tar"))
        lines.append(f"round {k}: {claimed if claimed is not None else left(saved):.2f}% of weights left, "
                     f"val_top1={top1(saved, x_val, y_val):.4f}")
        print(lines[-1], flush=True)
    with open(os.path.join(args.out, "log.txt"), "w", encoding="utf-8") as log:
        log.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
