#!/usr/bin/env python3
"""PyTorch side of `residual bench compare`: one model, one configuration, timed the same way.

Runs the same workload as `residual bench` (synthetic seeded inputs already on the device, a
train step = forward + cross-entropy + backward + SGD(momentum 0.9, weight decay 1e-4), or a
no-grad forward for inference) and prints one JSON object with the same field names, so the
C# side can put both into one table. Works with torch 1.13 / torchvision 0.14 (Debian) and
with PyTorch 2.x. Models that torchvision does not have (the CIFAR ResNets and the plain nets of
He et al.) are defined below to the same architecture as ResidualEngine's model zoo.
"""
import argparse
import json
import math
import os
import platform
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# Models torchvision lacks.
# CIFAR nets (He et al. 2016, section 4.2): 3x3 conv 16 -> three stages of n basic blocks with
# 16, 32, 64 channels -> global average pool -> fc. Depth = 6n + 2. Residual nets use the
# parameter-free option-A shortcut (stride-2 subsample, zero-pad the new channels).
# Plain nets are the same stacks without any shortcut (ImageNet plain-18/34: torchvision's
# ResNet layout with the identity paths and downsample convolutions removed).
# ---------------------------------------------------------------------------------------------


class ShortcutA(nn.Module):
    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.stride = stride
        self.pad = planes - in_planes

    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]
        before = self.pad // 2
        return F.pad(x, (0, 0, 0, 0, before, self.pad - before))


class CifarBlock(nn.Module):
    def __init__(self, in_planes, planes, stride, residual):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.residual = residual
        self.shortcut = None
        if residual and (stride != 1 or in_planes != planes):
            self.shortcut = ShortcutA(in_planes, planes, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + (x if self.shortcut is None else self.shortcut(x))
        return F.relu(out)


class CifarNet(nn.Module):
    def __init__(self, depth, residual, num_classes):
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError(f"CIFAR net depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for i in range(n):
                blocks.append(CifarBlock(in_planes, planes, stride if i == 0 else 1, residual))
                in_planes = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


class PlainBasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)

    def forward(self, x):
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


class PlainImageNet(nn.Module):
    def __init__(self, layers, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, in_planes = [], 64
        for planes, count, stride in zip((64, 128, 256, 512), layers, (1, 2, 2, 2)):
            blocks = []
            for i in range(count):
                blocks.append(PlainBasicBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


CIFAR_DEPTHS = (20, 32, 44, 56, 110, 1202)
PLAIN_IMAGENET = {"plain18": (2, 2, 2, 2), "plain34": (3, 4, 6, 3)}
# Image size each model family was designed for (used when --image-size is not given).
NATIVE_SIZE_CIFAR, NATIVE_SIZE_IMAGENET = 32, 224


def is_cifar(name):
    for prefix in ("resnet", "plain"):
        if name.startswith(prefix) and name[len(prefix):].isdigit() and int(name[len(prefix):]) in CIFAR_DEPTHS:
            return True
    return False


def build_model(name, num_classes):
    if is_cifar(name):
        residual = name.startswith("resnet")
        depth = int(name[len("resnet"):] if residual else name[len("plain"):])
        return CifarNet(depth, residual, num_classes)
    if name in PLAIN_IMAGENET:
        return PlainImageNet(PLAIN_IMAGENET[name], num_classes)
    import torchvision.models as tvm
    ctor = getattr(tvm, name, None)
    if ctor is None or not callable(ctor):
        raise SystemExit(f"pytorch_baseline: unknown model '{name}' (not a CIFAR/plain net and not in torchvision {tvm.__name__})")
    try:
        return ctor(weights=None, num_classes=num_classes)
    except TypeError:  # torchvision < 0.13 has no `weights`
        return ctor(pretrained=False, num_classes=num_classes)


def count_gmacs(model, x):
    """Multiply-accumulates of convolutions and linear layers for one image (the usual GMACs)."""
    macs = [0]

    def conv_hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        macs[0] += out.numel() // out.shape[0] * k

    def linear_hook(m, inp, out):
        macs[0] += m.in_features * m.out_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(x[:1])
    model.train(was_training)
    for h in hooks:
        h.remove()
    return macs[0] / 1e9


# ---------------------------------------------------------------------------------------------
# Statistics: the same definitions as Tools/Bench/Stats.cs (linear interpolation between the
# two nearest ranks, numpy's default), so both columns of the table mean the same thing.
# ---------------------------------------------------------------------------------------------


def percentile(sorted_values, p):
    if not sorted_values:
        raise ValueError("percentile of no values")
    rank = p / 100.0 * (len(sorted_values) - 1)
    lo = int(math.floor(rank))
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (rank - lo)


def summarize(values):
    s = sorted(values)
    return {
        "median": percentile(s, 50), "min": s[0], "p10": percentile(s, 10),
        "p90": percentile(s, 90), "max": s[-1], "mean": sum(s) / len(s),
    }


def rss_bytes():
    """Resident set size now (Linux /proc), or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_rss_bytes():
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024  # bytes on macOS, KiB on Linux


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--image-size", type=int, default=None)
    ap.add_argument("--num-classes", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--mode", choices=("train", "infer"), default="train")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (0 = torch's default)")
    ap.add_argument("--precision", choices=("fp32", "fp16", "bf16"), default="fp32")
    ap.add_argument("--format", choices=("nchw", "nhwc"), default="nchw")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--json", default=None, help="also write the result to this file")
    a = ap.parse_args(argv)
    if a.batch_size < 1 or a.steps < 1 or a.warmup < 0:
        ap.error("--batch-size and --steps must be >= 1, --warmup >= 0")

    cifar = is_cifar(a.model)
    image_size = a.image_size or (NATIVE_SIZE_CIFAR if cifar else NATIVE_SIZE_IMAGENET)
    num_classes = a.num_classes or (10 if cifar else 1000)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    device = torch.device(a.device)
    is_cuda = device.type == "cuda"
    if is_cuda:
        torch.backends.cudnn.benchmark = True
        # Same numerics as ours: fp32 means fp32, no TF32.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.cuda.reset_peak_memory_stats(device)
    rss_before = rss_bytes()

    fmt = torch.channels_last if a.format == "nhwc" else torch.contiguous_format
    model = build_model(a.model, num_classes).to(device=device, memory_format=fmt)
    params = sum(p.numel() for p in model.parameters())
    x = torch.randn(a.batch_size, 3, image_size, image_size, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, num_classes, (a.batch_size,), device=device)
    gmacs = count_gmacs(model, x)

    train = a.mode == "train"
    model.train(train)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=1e-4) if train else None
    amp_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(a.precision)
    scaler = torch.cuda.amp.GradScaler() if (train and amp_dtype == torch.float16 and is_cuda) else None

    def autocast():
        if amp_dtype is None:
            return torch.autocast(device_type=device.type, enabled=False)
        return torch.autocast(device_type=device.type, dtype=amp_dtype)

    def step():
        if train:
            opt.zero_grad(set_to_none=True)
            with autocast():
                loss = F.cross_entropy(model(x), y)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
        else:
            with torch.no_grad(), autocast():
                model(x)

    times = []
    cpu0 = None
    for i in range(a.warmup + a.steps):
        if i == a.warmup:
            cpu0 = time.process_time()
        if is_cuda:
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        step()
        if is_cuda:
            torch.cuda.synchronize(device)
        ms = (time.perf_counter() - t0) * 1000.0
        if i >= a.warmup:
            times.append(ms)

    stats = summarize(times)
    cpu_ms_per_step = (time.process_time() - cpu0) * 1000.0 / a.steps if cpu0 is not None and a.steps > 0 else None
    peak_rss = peak_rss_bytes()
    if is_cuda:
        peak = torch.cuda.max_memory_allocated(device)
        peak_kind = "torch.cuda.max_memory_allocated (tensors + cuDNN workspaces, rounded blocks; incl. parameters)"
        device_name = torch.cuda.get_device_name(device)
    else:
        peak = peak_rss - rss_before if rss_before is not None else peak_rss
        peak_kind = ("process peak RSS minus RSS before the model was built (getrusage maxrss)"
                     if rss_before is not None else "process peak RSS (getrusage maxrss)")
        device_name = cpu_model()

    result = {
        "engine": "pytorch",
        "engine_version": f"torch {torch.__version__}",
        "model": a.model,
        "mode": a.mode,
        "device": str(device),
        "device_name": device_name,
        "batch_size": a.batch_size,
        "image_size": image_size,
        "num_classes": num_classes,
        "precision": a.precision,
        "format": a.format,
        "threads": torch.get_num_threads(),
        "warmup": a.warmup,
        "steps": a.steps,
        "seed": a.seed,
        "ms_per_step": stats,
        "images_per_sec": a.batch_size * 1000.0 / stats["median"],
        "peak_memory_bytes": int(peak),
        "peak_memory_kind": peak_kind,
        "process_peak_rss_bytes": int(peak_rss),
        "parameters": params,
        "gmacs_per_image": gmacs,
        "gflop_per_image": 2 * gmacs * (3 if train else 1),
        "gflop_note": "2 x GMACs x 3 (forward + backward)" if train else "2 x GMACs (forward)",
        "samples_ms": times,
    }
    if cpu_ms_per_step is not None:
        result["cpu_ms_per_step"] = cpu_ms_per_step
    text = json.dumps(result, indent=2)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
