#!/usr/bin/python3
"""PyTorch references for the training-recipe pieces (issue 14), as small JSON files.

HOW TO RUN (repository root; Debian's torch 1.13 / torchvision 0.14 at /usr/bin/python3):

    /usr/bin/python3 Tools/reference/make_recipe_fixtures.py

WHAT IT WRITES (Tests/Fixtures/recipe/)
    lr_schedules.json   the learning rate of each epoch for torchvision's scheduler set-ups
                        (train.py: SequentialLR of a LinearLR/ConstantLR warm-up and the main
                        scheduler, stepped once per epoch); our schedules are compared with one
                        step per epoch, where per-step and per-epoch stepping coincide.
    optimizers.json     parameters after a few steps of torch.optim.AdamW and SGD on fixed
                        gradients, in float64; and clip_grad_norm_ on fixed gradients.
    ema.json            torchvision's --model-ema on a BatchNorm2d(3) whose parameters and
                        buffers follow a fixed random walk: an AveragedModel with use_buffers=True
                        and avg_fn decay * avg + (1 - decay) * value (references/classification's
                        ExponentialMovingAverage), the decay adjusted and updated every `steps`
                        batches of an epoch with the warm-up reset, as train.py drives it; the
                        model's and the average's tensors after every batch, in float32.
Deterministic: fixed inputs, float64 arithmetic.
"""
import json
import os

import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "recipe")


def schedule(main, epochs, warmup=0, method="linear", decay=0.01, lr=0.5, **kw):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    if main == "steplr":
        m = torch.optim.lr_scheduler.StepLR(opt, step_size=kw["step_size"], gamma=kw["gamma"])
    elif main == "multisteplr":
        m = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=kw["milestones"], gamma=kw["gamma"])
    elif main == "cosineannealinglr":
        m = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs - warmup, eta_min=kw["lr_min"])
    elif main == "exponentiallr":
        m = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=kw["gamma"])
    if warmup > 0:
        if method == "linear":
            w = torch.optim.lr_scheduler.LinearLR(opt, start_factor=decay, total_iters=warmup)
        else:
            w = torch.optim.lr_scheduler.ConstantLR(opt, factor=decay, total_iters=warmup)
        s = torch.optim.lr_scheduler.SequentialLR(opt, schedulers=[w, m], milestones=[warmup])
    else:
        s = m
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        s.step()
    case = dict(kind=main, epochs=epochs, warmup=warmup, method=method, decay=decay, lr=lr, lrs=lrs)
    case.update(kw)
    return case


def optimizers():
    torch.manual_seed(0)
    shapes = [(4, 3), (5,), (2, 2, 3)]
    init = [torch.randn(s, dtype=torch.float64) for s in shapes]
    grads = [[torch.randn(s, dtype=torch.float64) for s in shapes] for _ in range(4)]
    cases = []
    for name, make in [
        ("adamw", lambda ps: torch.optim.AdamW(ps, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05)),
        ("adamw_amsgrad", lambda ps: torch.optim.AdamW(ps, lr=0.003, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True)),
    ]:
        ps = [torch.nn.Parameter(t.clone()) for t in init]
        opt = make(ps)
        for step in grads:
            for p, g in zip(ps, step):
                p.grad = g.clone()
            opt.step()
        d = opt.defaults
        cases.append(dict(name=name, lr=d["lr"], beta1=d["betas"][0], beta2=d["betas"][1], eps=d["eps"],
                          weight_decay=d["weight_decay"], amsgrad=d["amsgrad"],
                          after=[p.detach().flatten().tolist() for p in ps]))
    clips = []
    for max_norm, norm_type in [(1.0, 2.0), (100.0, 2.0), (0.5, float("inf"))]:
        ps = [torch.nn.Parameter(t.clone()) for t in init]
        for p, g in zip(ps, grads[0]):
            p.grad = g.clone() * 3
        total = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type=norm_type)
        clips.append(dict(max_norm=max_norm, norm_type="inf" if norm_type == float("inf") else norm_type, total_norm=float(total),
                          grads=[p.grad.flatten().tolist() for p in ps]))
    return dict(shapes=shapes, init=[t.flatten().tolist() for t in init],
                grads=[[g.flatten().tolist() for g in step] for step in grads], optimizers=cases, clip=clips)


def ema():
    torch.manual_seed(11)
    batch, steps, epochs, warmup, decay, per_epoch = 8, 2, 3, 1, 0.999, 5
    # train.py's adjustment of the decay (one process).
    alpha = min(1.0, (1.0 - decay) * (batch * steps / epochs))
    adjusted = 1.0 - alpha
    bn = torch.nn.BatchNorm2d(3)
    average = torch.optim.swa_utils.AveragedModel(
        bn, avg_fn=lambda avg, value, n: adjusted * avg + (1 - adjusted) * value, use_buffers=True)
    floats = lambda m: [t.detach().reshape(-1).tolist() for t in list(m.parameters()) + list(m.buffers()) if t.is_floating_point()]
    rows = []
    with torch.no_grad():
        for epoch in range(epochs):
            for i in range(per_epoch):
                for t in list(bn.parameters()) + [bn.running_mean, bn.running_var]:
                    t.add_(0.1 * torch.randn(t.shape))
                bn.running_var.abs_()
                bn.num_batches_tracked += 1
                if i % steps == 0:
                    average.update_parameters(bn)
                    if epoch < warmup:
                        average.n_averaged.fill_(0)
                rows.append(dict(epoch=epoch, batch=i, model=floats(bn), ema=floats(average.module),
                                 n_averaged=int(average.n_averaged)))
    return dict(batch_size=batch, steps=steps, epochs=epochs, warmup_epochs=warmup, decay=decay, adjusted_decay=adjusted, rows=rows)


def main():
    os.makedirs(OUT, exist_ok=True)
    cases = [
        schedule("steplr", 10, step_size=3, gamma=0.5),
        schedule("multisteplr", 10, milestones=[4, 7], gamma=0.1),
        schedule("exponentiallr", 8, gamma=0.9),
        schedule("cosineannealinglr", 12, warmup=3, method="linear", decay=0.01, lr_min=0.001),
        schedule("cosineannealinglr", 10, warmup=2, method="constant", decay=0.1, lr_min=0.0),
        schedule("steplr", 9, warmup=2, method="linear", decay=0.25, step_size=4, gamma=0.1),
    ]
    with open(os.path.join(OUT, "lr_schedules.json"), "w") as f:
        json.dump(dict(torch=torch.__version__, cases=cases), f, indent=1)
    with open(os.path.join(OUT, "optimizers.json"), "w") as f:
        json.dump(dict(torch=torch.__version__, **optimizers()), f, indent=1)
    with open(os.path.join(OUT, "ema.json"), "w") as f:
        json.dump(dict(torch=torch.__version__, **ema()), f, indent=1)


if __name__ == "__main__":
    main()
