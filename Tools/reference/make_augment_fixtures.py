#!/usr/bin/python3
"""torchvision 0.14 references for the per-sample and per-batch augmentations (issue 14).

HOW TO RUN (repository root; Debian's torch 1.13 / torchvision 0.14 at /usr/bin/python3):

    /usr/bin/python3 Tools/reference/make_augment_fixtures.py

WHAT IT WRITES (Tests/Fixtures/recipe/augment.json)
    images      small uint8 CHW images (base64 of the raw bytes): noise (11 x 13), a smooth gradient, a low
                range one, a flat one and a two-level one (edge cases of equalize/autocontrast).
    ops         each AutoAugment operation run through torchvision.transforms.autoaugment._apply_op
                (the function TrivialAugmentWide, RandAugment and AutoAugment call) with nearest
                interpolation and fill None (zeros) on uint8 tensors: op, magnitude, image, output.
    spaces      the magnitude tables of TrivialAugmentWide (31 bins), RandAugment (31 bins, for a
                13 x 17 and a 224 x 224 image) and AutoAugment (10 bins), as float32 values.
    policy      AutoAugment's ImageNet policy (25 sub-policies of two (op, probability, bin)).
    cutmix      the box and corrected lambda of references/classification/transforms.py's
                RandomCutmix for given (lambda, r_x, r_y), computed with torch as that code does.
    mixup       a float32 batch mixed with its roll by one, as RandomMixup does (in place, float32).
    soft_ce     torch.nn.functional.cross_entropy with probability targets lam * onehot(y) +
                (1 - lam) * onehot(roll(y, 1)) and label smoothing: loss and d loss / d logits,
                in float64 and float32.
Deterministic: fixed seeds and inputs.
"""
import base64
import json
import math
import os

import torch
import torch.nn.functional as F
import torchvision
from torchvision.transforms import InterpolationMode
from torchvision.transforms import autoaugment as AA

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "recipe")


def b64(t):
    return base64.b64encode(t.contiguous().numpy().tobytes()).decode("ascii")


def images():
    g = torch.Generator().manual_seed(14)
    ys, xs = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    smooth = torch.stack([(xs * 15 + ys * 3) % 256, (ys * 14 + 20) % 256, ((xs + ys) * 8 + 40) % 256]).to(torch.uint8)
    few = torch.full((3, 7, 10), 30, dtype=torch.uint8)
    few[:, :, 6:] = 200
    few[1, 0, 0] = 31
    return {
        "noise": torch.randint(0, 256, (3, 11, 13), generator=g, dtype=torch.uint8),
        "smooth": smooth,
        "lowrange": torch.randint(60, 141, (3, 9, 11), generator=g, dtype=torch.uint8),
        "flat": torch.full((3, 8, 8), 77, dtype=torch.uint8),
        "few": few,
    }


def spaces():
    ta = AA.TrivialAugmentWide()._augmentation_space(31)
    ra = AA.RandAugment()
    aa = AA.AutoAugment()
    as_lists = lambda d: {k: v[0].reshape(-1).tolist() for k, v in d.items()}
    signed = lambda d: {k: bool(v[1]) for k, v in d.items()}
    return {
        "ta_wide": as_lists(ta), "ta_wide_signed": signed(ta),
        "ra_13x17": as_lists(ra._augmentation_space(31, (13, 17))), "ra_224x224": as_lists(ra._augmentation_space(31, (224, 224))),
        "ra_signed": signed(ra._augmentation_space(31, (13, 17))),
        "imagenet_13x17": as_lists(aa._augmentation_space(10, (13, 17))),
        "imagenet_signed": signed(aa._augmentation_space(10, (13, 17))),
    }


def ops(imgs, sp):
    ta = sp["ta_wide"]
    pick = lambda op, bins: [ta[op][b] for b in bins]
    cases = []
    geometric = {
        "ShearX": pick("ShearX", [1, 9, 30]), "ShearY": pick("ShearY", [2, 17, 30]),
        "TranslateX": [3.0, 7.9, 32.0, sp["ra_13x17"]["TranslateX"][9]], "TranslateY": [2.0, 5.5, 32.0, sp["ra_13x17"]["TranslateY"][9]],
        "Rotate": pick("Rotate", [2, 7, 20, 30]) + [9.0, 90.0, 180.0],
    }
    colour = {op: pick(op, [5, 19, 25, 30]) for op in ["Brightness", "Color", "Contrast", "Sharpness"]}
    edge = [("Posterize", float(b)) for b in range(2, 9)] + [("Solarize", t) for t in [0.0, 8.5, 127.5, 200.0, 255.0]]
    edge += [("AutoContrast", 0.0), ("Equalize", 0.0), ("Invert", 0.0), ("Identity", 0.0)]
    signed = lambda table, keep: [(op, s * m) for op, mags in table.items() for m in mags[:keep] for s in (1, -1)]
    for name, img in imgs.items():
        if name == "noise":
            todo = signed(geometric, 5) + signed(colour, 3) + edge
        elif name == "smooth":
            todo = signed(geometric, 2) + signed(colour, 2) + edge[:7:3] + edge[-4:]
        elif name in ("lowrange", "flat"):
            todo = signed(colour, 1) + edge[-4:-1]
        else:
            todo = edge[-4:-1]
        for op, m in todo:
            out = AA._apply_op(img.clone(), op, m, interpolation=InterpolationMode.NEAREST, fill=None)
            assert out.dtype == torch.uint8 and out.shape == img.shape
            cases.append(dict(op=op, magnitude=m, image=name, out=b64(out)))
    return cases


def cutmix():
    cases = []
    for (h, w, lam, rx, ry) in [(16, 16, 0.7, 5, 9), (13, 17, 0.25, 0, 12), (13, 17, 0.999, 16, 0), (224, 224, 0.5, 100, 200),
                                (32, 32, 0.0, 31, 31), (32, 32, 1.0, 3, 3), (7, 9, 0.3333, 8, 6), (224, 224, 0.12345, 223, 0)]:
        # references/classification/transforms.py, RandomCutmix.forward, with r_x, r_y and lambda given.
        r_x, r_y = torch.tensor(rx), torch.tensor(ry)
        r = 0.5 * math.sqrt(1.0 - lam)
        r_w_half = int(r * w)
        r_h_half = int(r * h)
        x1 = int(torch.clamp(r_x - r_w_half, min=0))
        y1 = int(torch.clamp(r_y - r_h_half, min=0))
        x2 = int(torch.clamp(r_x + r_w_half, max=w))
        y2 = int(torch.clamp(r_y + r_h_half, max=h))
        corrected = float(1.0 - (x2 - x1) * (y2 - y1) / (w * h))
        cases.append(dict(h=h, w=w, lam=lam, r_x=rx, r_y=ry, box=[x1, y1, x2, y2], lam_corrected=corrected))
    return cases


def mixup():
    g = torch.Generator().manual_seed(3)
    batch = torch.randn(4, 3, 3, 4, generator=g)
    cases = []
    for lam in [0.8173, 0.25, 0.5000001]:
        b = batch.clone()
        rolled = b.roll(1, 0)
        rolled.mul_(1.0 - lam)
        b.mul_(lam).add_(rolled)
        cases.append(dict(lam=lam, out=b.reshape(-1).tolist()))
    return dict(shape=list(batch.shape), batch=batch.reshape(-1).tolist(), cases=cases)


def soft_ce():
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(6, 5, generator=g, dtype=torch.float64) * 2
    labels = torch.tensor([0, 3, 3, 1, 4, 2])
    cases = []
    for dtype in (torch.float64, torch.float32):
        for lam, ls in [(0.7, 0.0), (0.3141, 0.1), (1.0, 0.1), (0.0, 0.2)]:
            x = logits.to(dtype).clone().requires_grad_(True)
            t = lam * F.one_hot(labels, 5).to(dtype) + (1 - lam) * F.one_hot(labels.roll(1, 0), 5).to(dtype)
            loss = F.cross_entropy(x, t, label_smoothing=ls)
            loss.backward()
            cases.append(dict(dtype=str(dtype).split(".")[1], lam=lam, label_smoothing=ls, loss=float(loss), grad=x.grad.reshape(-1).tolist()))
    return dict(logits=logits.reshape(-1).tolist(), shape=list(logits.shape), labels=labels.tolist(), cases=cases)


def main():
    os.makedirs(OUT, exist_ok=True)
    imgs = images()
    sp = spaces()
    policy = [[list(op) for op in sub] for sub in AA.AutoAugment()._get_policies(AA.AutoAugmentPolicy.IMAGENET)]
    doc = dict(torch=torch.__version__, torchvision=torchvision.__version__,
               images={k: dict(shape=list(v.shape), data=b64(v)) for k, v in imgs.items()},
               ops=ops(imgs, sp), spaces=sp, policy=policy, cutmix=cutmix(), mixup=mixup(), soft_ce=soft_ce())
    with open(os.path.join(OUT, "augment.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))


if __name__ == "__main__":
    main()
