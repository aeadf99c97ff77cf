"""The example project's own training script, in the research group's manner: it prints a
``Namespace(...)`` of its arguments, trains State 0 dense, then prunes by global weight
magnitude and retrains for each later state, printing their log lines (``pruning state N``,
``Epoch: [e][i/n]``, ``train_accuracy``, ``valid_accuracy`` for validation then test,
``* best SA``, ``* remain weight``) and saving ``{k}checkpoint.pth.tar`` per state.

    python train.py --epochs 3 --pruning_times 2 --rate 0.5 --save_dir runs/out
"""
import argparse
import os
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from own_vit.model import Normalize, VisionTransformer


def arguments():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="vit_mini")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--pruning_times", type=int, default=2)
    p.add_argument("--rate", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--init", default="runs/vit_mini_digits_init.pth.tar")
    p.add_argument("--save_dir", default="runs/out")
    p.add_argument("--vit_pretrained", action="store_true")
    return p.parse_args()


def data(seed):
    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]
    x = torch.nn.functional.interpolate(x, size=32, mode="nearest").repeat(1, 3, 1, 1)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    idx = np.arange(len(y))
    rest, test = train_test_split(idx, test_size=0.2, random_state=0, stratify=bunch.target)
    train, val = train_test_split(rest, test_size=0.1, random_state=seed, stratify=bunch.target[rest])
    return (x[train], y[train]), (x[val], y[val]), (x[test], y[test])


def accuracy(model, split):
    model.eval()
    with torch.no_grad():
        correct = (model(split[0]).argmax(1) == split[1]).sum().item()
    model.train()
    return 100.0 * correct / len(split[1])


def train_state(model, masks, train, val, test, args):
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    n, best = len(train[1]), (0.0, 0.0)
    steps = n // args.batch_size
    for epoch in range(args.epochs):
        print(args.lr)
        order = torch.randperm(n)
        seen = hits = loss_sum = 0
        for i in range(steps):
            idx = order[i * args.batch_size:(i + 1) * args.batch_size]
            out = model(train[0][idx])
            loss = torch.nn.functional.cross_entropy(out, train[1][idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                for p, m in masks:
                    p.mul_(m)
            hit = (out.argmax(1) == train[1][idx]).float().mean().item() * 100
            seen, hits, loss_sum = seen + 1, hits + hit, loss_sum + loss.item()
            if i % 20 == 0:
                print(f"Epoch: [{epoch}][{i}/{steps}]\tLoss {loss.item():.4f} ({loss_sum / seen:.4f})\t"
                      f"Accuracy {hit:.3f} ({hits / seen:.3f})\tTime 0.01")
        print(f"train_accuracy {hits / seen:.3f}")
        va, ta = accuracy(model, val), accuracy(model, test)
        print(f"valid_accuracy {va:.3f}")
        print(f"valid_accuracy {ta:.3f}")
        best = max(best, (va, ta))
    return best


def prune(model, fraction):
    """Global magnitude pruning of the blocks' linear weights to ``fraction`` zeros."""
    weights = [m.weight for name, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and name.startswith("blocks.")]
    flat = torch.cat([w.detach().abs().flatten() for w in weights])
    cut = flat.kthvalue(max(1, int(fraction * flat.numel()))).values
    masks = [(w, (w.detach().abs() > cut).float()) for w in weights]
    with torch.no_grad():
        for w, m in masks:
            w.mul_(m)
    return masks


def main():
    args = arguments()
    print(args)
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    train, val, test = data(args.seed)
    print(f"build model: {args.arch}")
    model = VisionTransformer(in_chans=3, num_classes=10)
    model.normalize = Normalize([0.3056] * 3, [0.3230] * 3)   # the digits' statistics
    if not os.path.exists(args.init):
        os.makedirs(os.path.dirname(args.init) or ".", exist_ok=True)
        torch.save({"state_dict": model.state_dict()}, args.init)
    model.load_state_dict(torch.load(args.init, weights_only=True)["state_dict"])
    init_weight = {k: v.clone() for k, v in model.state_dict().items()}
    os.makedirs(args.save_dir, exist_ok=True)
    masks = []
    for state in range(args.pruning_times):
        started = time.time()
        print("*" * 42)
        print(f"pruning state {state}")
        print("*" * 42)
        if state > 0:
            masks = prune(model, 1 - (1 - args.rate) ** state)
        total = sum(m.numel() for _, m in masks) or 1
        kept = sum(int(m.sum()) for _, m in masks) if masks else total
        print(f"* remain weight = {100.0 * kept / total:.2f} %")
        best_val, best_test = train_state(model, masks, train, val, test, args)
        print(f"* best SA = {best_test:.3f}")
        torch.save({"state_dict": model.state_dict(), "init_weight": init_weight, "best_sa": best_test,
                    "result": {"val": best_val, "test": best_test}},
                   os.path.join(args.save_dir, f"{state}checkpoint.pth.tar"))
        print(f"State {state} completed! ({time.time() - started:.2f} seconds)")


if __name__ == "__main__":
    main()
