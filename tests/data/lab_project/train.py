"""The lab's training script: prints its arguments as JSON, then one line per epoch with the
validation top-1 as a fraction, e.g. '[ep 003] loss=0.4123 val_top1=0.8712 (n=360)'; saves the
init it started from and the trained model.

    python train.py --epochs 4 --out runs
"""
import argparse
import json
import os

import torch

import labdata
import labnet


def arguments():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs")
    return p.parse_args()


def top1(model, x, y):
    model.eval()
    with torch.no_grad():
        correct = int((model(x).argmax(1) == y).sum())
    model.train()
    return correct / len(y)


def main():
    args = arguments()
    print("args: " + json.dumps({**vars(args), "dataset": "digits16", "model": "labnet"}))
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    data = labdata.digits16()
    (x, y), (x_val, y_val) = labdata.tensors(data["train"]), labdata.tensors(data["test"])
    model = labnet.labnet()
    os.makedirs(args.out, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "arch": "labnet"}, os.path.join(args.out, "init.pth.tar"))
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    for epoch in range(args.epochs):
        order, total = torch.randperm(len(y)), 0.0
        for start in range(0, len(y), args.batch):
            idx = order[start:start + args.batch]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        print(f"[ep {epoch:03d}] loss={total / len(y):.4f} val_top1={top1(model, x_val, y_val):.4f} "
              f"(n={len(y_val)})", flush=True)
    torch.save({"state_dict": model.state_dict(), "arch": "labnet", "epochs": args.epochs},
               os.path.join(args.out, "trained.pth.tar"))


if __name__ == "__main__":
    main()
