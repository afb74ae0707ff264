#!/usr/bin/python3
"""PyTorch .pth fixtures for the restricted reader (Engine/Serialization/TorchZipReader.cs).

HOW TO RUN (from the repository root; Debian's torch 1.13 is at /usr/bin/python3, not the pyenv
python3 first on PATH):

    /usr/bin/python3 Tools/reference/make_pth_fixtures.py

Every file is written by torch.save itself (zip + pickle protocol 2), so the C# reader is tested
against what torch really writes. Deterministic (fixed seeds, one thread).

WHAT IT WRITES (Tests/Fixtures/pth/)
    tiny_cifar_f32.pth    torch.save(model.state_dict()) of TinyCifar: He et al.'s CIFAR ResNet
                          with one basic block per stage, widths 4/8/16, option-A shortcuts,
                          10 classes (our ResNetConfig: resnet20 with Layers [1,1,1], Widths
                          [4,8,16]); BN statistics randomised, num_batches_tracked = 5 (LongStorage).
    tiny_cifar_f16.pth    the same state dict after model.half() (HalfStorage; the I64 counter stays).
    tiny_cifar_bf16.pth   the same after model.bfloat16() (BFloat16Storage).
    tiny_cifar_ckpt.pth   a training script's checkpoint: {"epoch": 3, "state_dict": <f32 state dict>,
                          "optimizer": SGD(momentum 0.9).state_dict() after one step, "note": "..."}
                          (ints, floats, bools, None, lists and nested dicts around the tensors).
    tiny_cifar_io.pt      a plain dict: "x" (2,3,16,16); "logits_f32", "logits_f16", "logits_bf16":
                          eval-mode float32 logits of the model with the f32 / f16-rounded /
                          bf16-rounded weights (the rounded ones computed in float32).
    views.pt              tensors that share one storage: "base" (4,6) F32, "rows" = base[1:3],
                          "cols" = base[:, 1::2] (strided), "t" = base.t(), "scalar" = base[2, 3]
                          (offset, no dims), "expand" = base[0].expand(3, 6) (stride 0), plus
                          "<name>_copy" = the contiguous clone of each view, in its own storage,
                          and "long" (5,) I64, "int" (2,2) I32, "byte" (3,) U8, "double" (2,) F64.
"""
import os
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "pth")
torch.set_num_threads(1)


class Block(nn.Module):
    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = (planes - inp) // 2 if stride != 1 or inp != planes else None

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        sc = x if self.pad is None else F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + sc)


class TinyCifar(nn.Module):
    def __init__(self, widths=(4, 8, 16), num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.layer1 = nn.Sequential(Block(widths[0], widths[0], 1))
        self.layer2 = nn.Sequential(Block(widths[0], widths[1], 2))
        self.layer3 = nn.Sequential(Block(widths[1], widths[2], 2))
        self.fc = nn.Linear(widths[2], num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def path(name):
    return os.path.join(OUT, name)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    model = TinyCifar()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5); m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2); m.running_var.uniform_(0.5, 1.5)
                m.num_batches_tracked.fill_(5)
    model.eval()
    x = torch.randn(2, 3, 16, 16)
    io = {"x": x}
    with torch.no_grad():
        io["logits_f32"] = model(x)
    torch.save(model.state_dict(), path("tiny_cifar_f32.pth"))

    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    ckpt_model = TinyCifar()
    ckpt_model.load_state_dict(model.state_dict())
    opt = torch.optim.SGD(ckpt_model.parameters(), lr=0.1, momentum=0.9)
    ckpt_model.train()
    F.cross_entropy(ckpt_model(x), torch.tensor([1, 2])).backward()
    opt.step()
    torch.save({"epoch": 3, "state_dict": model.state_dict(), "optimizer": opt.state_dict(), "note": "fixture", "best": 0.5,
                "extra": None, "flags": [True, False]}, path("tiny_cifar_ckpt.pth"))

    for tag, dtype in (("f16", torch.float16), ("bf16", torch.bfloat16)):
        low = TinyCifar()
        low.load_state_dict(model.state_dict())
        low = low.to(dtype)
        torch.save(low.state_dict(), path("tiny_cifar_%s.pth" % tag))
        back = TinyCifar()
        back.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in low.state_dict().items()})
        back.eval()
        with torch.no_grad():
            io["logits_" + tag] = back(x)
    torch.save(io, path("tiny_cifar_io.pt"))

    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) * 0.5 - 3
    views = {"base": base, "rows": base[1:3], "cols": base[:, 1::2], "t": base.t(), "scalar": base[2, 3],
             "expand": base[0].expand(3, 6)}
    views.update({k + "_copy": v.clone().contiguous() for k, v in list(views.items())})
    views.update({"long": torch.tensor([-2, -1, 0, 1, 2**40]), "int": torch.tensor([[1, -2], [3, -4]], dtype=torch.int32),
                  "byte": torch.tensor([0, 7, 255], dtype=torch.uint8), "double": torch.tensor([0.1, -1e300], dtype=torch.float64)})
    torch.save(views, path("views.pt"))

    for f in sorted(os.listdir(OUT)):
        print("%8d  %s" % (os.path.getsize(path(f)), f))


if __name__ == "__main__":
    main()
