#!/usr/bin/env python3
"""The plain PyTorch training loop that `residual train` is compared with end to end.

Trains a model on an ImageFolder (train/<class>/*, val/<class>/*) with the same recipe as
`residual train --augment cifar` (He et al.'s small-image augmentation): images converted to RGB,
centre-cropped/zero-padded to the size, RandomCrop(size, padding=4) + RandomHorizontalFlip for
training, the centre view for evaluation, normalised with CIFAR-10's mean and std; SGD (momentum
0.9, weight decay 1e-4 on every parameter), cosine annealing over all steps (per step, as ours),
shuffled batches with the last partial one dropped, DataLoader worker processes, torch threads.
Each epoch ends as ours does: a full evaluation on val (loss, top-1, top-5) and a checkpoint of
model and optimizer state written to --out. Prints one JSON object with per-epoch times.
Works with torch 1.13 / torchvision 0.14 (Debian's python3-torch) and PyTorch 2.x.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F
import torchvision.datasets as tvd
import torchvision.transforms as T

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_baseline import build_model  # noqa: E402  (same model definitions as the step benchmark)

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="folder with train/ and val/ class folders")
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=None, help="folder for the per-epoch checkpoint (default: none written)")
    ap.add_argument("--json", default=None, help="also write the result to this file")
    a = ap.parse_args(argv)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    t_start = time.perf_counter()

    size = a.image_size
    norm = T.Normalize(CIFAR_MEAN, CIFAR_STD)
    fit = T.CenterCrop(size)  # zero-pads a smaller image around its centre, as ours
    train_tf = T.Compose([T.Lambda(lambda im: im.convert("RGB")), fit, T.RandomCrop(size, padding=4),
                          T.RandomHorizontalFlip(), T.ToTensor(), norm])
    val_tf = T.Compose([T.Lambda(lambda im: im.convert("RGB")), fit, T.ToTensor(), norm])
    train_set = tvd.ImageFolder(os.path.join(a.data, "train"), transform=train_tf)
    val_set = tvd.ImageFolder(os.path.join(a.data, "val"), transform=val_tf)
    num_classes = len(train_set.classes)
    kw = dict(num_workers=a.workers, persistent_workers=a.workers > 0)
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=a.batch_size, shuffle=True, drop_last=True, **kw)
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=a.batch_size, shuffle=False, **kw)

    model = build_model(a.model, num_classes)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=1e-4)
    steps_per_epoch = len(train_loader)
    total_steps = a.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps)))
    setup_s = time.perf_counter() - t_start

    epochs = []
    for epoch in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        c0 = time.process_time()
        model.train()
        seen, correct, loss_sum, wait = 0, 0, 0.0, 0.0
        t_wait = time.perf_counter()
        for x, y in train_loader:
            wait += time.perf_counter() - t_wait
            opt.zero_grad(set_to_none=True)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * y.numel()
            correct += (logits.argmax(1) == y).sum().item()
            seen += y.numel()
            t_wait = time.perf_counter()
        t_train = time.perf_counter() - t0

        t1 = time.perf_counter()
        model.eval()
        vloss, top1, top5, vn = 0.0, 0, 0, 0
        with torch.no_grad():
            for x, y in val_loader:
                logits = model(x)
                vloss += F.cross_entropy(logits, y, reduction="sum").item()
                top = logits.topk(min(5, num_classes), 1).indices
                top1 += (top[:, 0] == y).sum().item()
                top5 += (top == y[:, None]).any(1).sum().item()
                vn += y.numel()
        t_eval = time.perf_counter() - t1
        if a.out:
            os.makedirs(a.out, exist_ok=True)
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch},
                       os.path.join(a.out, "last.pth"))
        t_epoch = time.perf_counter() - t0
        epochs.append({
            "epoch": epoch, "seconds": t_epoch, "train_seconds": t_train, "eval_seconds": t_eval,
            "main_process_cpu_seconds": time.process_time() - c0,
            "data_wait_seconds": wait, "steps": steps_per_epoch,
            "train_loss": loss_sum / max(1, seen), "train_top1": correct / max(1, seen),
            "val_loss": vloss / max(1, vn), "val_top1": top1 / max(1, vn), "val_top5": top5 / max(1, vn),
        })
        print(json.dumps(epochs[-1]), file=sys.stderr, flush=True)

    result = {
        "engine": "pytorch", "engine_version": f"torch {torch.__version__}", "model": a.model,
        "data": os.path.abspath(a.data), "train_images": len(train_set), "val_images": len(val_set),
        "batch_size": a.batch_size, "image_size": size, "workers": a.workers, "threads": torch.get_num_threads(),
        "setup_seconds": setup_s, "epochs": epochs, "total_seconds": time.perf_counter() - t_start,
    }
    text = json.dumps(result, indent=2)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
