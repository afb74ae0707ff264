#!/usr/bin/python3
"""PyTorch reference fixtures for ResidualEngine's mixed-precision tests (bf16 autocast on the CPU).

HOW TO RUN (from the repository root; Debian's torch 1.13, i.e. /usr/bin/python3, not the pyenv
python3 first on PATH):

    /usr/bin/python3 Tools/reference/make_amp_fixtures.py

Deterministic (fixed seeds, one thread). Writes small safetensors files with make_fixtures.py's writer.

WHAT IT WRITES: Tests/Fixtures/amp/<case>.safetensors
    Every op runs under torch.autocast("cpu", dtype=torch.bfloat16), PyTorch 1.13's CPU autocast:
    conv2d and linear cast their F32 inputs and weights to bf16 and return bf16; batch_norm takes a
    bf16 input with F32 weight, bias and running statistics and returns bf16; relu, add, the poolings
    stay in their input's type; cross_entropy widens bf16 logits to F32. Inputs are stored in the
    dtype the op receives them in (x F32 for conv2d/linear, bf16 for the others; parameters F32).
    "g" is the gradient fed to the output (stored in the output's dtype), and the gradients are
    those of torch.autograd.grad(y, inputs, g), stored in each input's dtype.
    conv2d_3x3_bias, conv2d_stride2_groups2   x, w, b [if bias], g, y, dx, dw, db [if bias]; meta stride,
                                              padding, groups, bias; and "<key>_f32" of y, dx, dw, db: the
                                              same op in float32 without autocast (g widened), the reference
                                              both bf16 results are measured against
    linear          x, w, b, g, y, dx, dw, db, and their "<key>_f32"
    batchnorm2d_train  x (bf16), gamma, beta, running_mean, running_var (F32, before), g, y, dx, dgamma,
                       dbeta, running_mean_after, running_var_after
    relu, maxpool2d_3x3_s2_p1, avgpool2d_2, global_avgpool   x (bf16), g, y, dx
    add             a, b (bf16), g, y, da, db
    add_promote     a (bf16), b (F32): y is F32 (type promotion); g, y, da (bf16), db (F32)
    cross_entropy   logits (bf16), labels (I64), loss (F32), dlogits (bf16) of the loss itself
    cifar_resnet20_bf16
        He et al.'s CIFAR ResNet-20 (make_fixtures.py's), deterministic weights (make_fixtures.INIT_RULE),
        train mode, x (2, 3, 16, 16) = det_input, labels [3, 5]; forward and loss under autocast,
        backward outside it (as PyTorch recommends): logits (bf16), loss (F32), and per parameter
        "grad_stats.<p>" F64 [sum, sum of squares] and "grad_head.<p>" (first min(16, numel), F32);
        the same in float32 without autocast: logits_f32, loss_f32, "grad_stats_f32.<p>".
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402  (the writer, the deterministic init, the CIFAR ResNet)

AMP = os.path.join(mf.FIX, "amp")
NOTE = ("computed by torch %s under torch.autocast('cpu', dtype=torch.bfloat16); gradients via torch.autograd.grad(y, inputs, g)"
        % torch.__version__)
BF = torch.bfloat16


def cast():
    return torch.autocast("cpu", dtype=BF)


def save(case, out, **opts):
    md = {"op": case, "keys": ",".join(n for n, _ in out), "note": NOTE}
    for k, v in opts.items():
        md[k] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    mf.save(os.path.join(AMP, case + ".safetensors"), out, md)


def grads(y, g, *inputs):
    return torch.autograd.grad(y, inputs, g)


def conv_case(case, seed, x_shape, w_shape, stride, padding, groups, bias):
    r = mf.rng(seed)
    x, w = mf.leaf(mf.randn(r, *x_shape)), mf.leaf(mf.randn(r, *w_shape) * 0.3)
    b = mf.leaf(mf.randn(r, w_shape[0])) if bias else None
    with cast():
        y = F.conv2d(x, w, b, stride=stride, padding=padding, groups=groups)
    g = mf.randn(r, *y.shape).to(y.dtype)
    d = grads(y, g, x, w, *([b] if bias else []))
    out = [("x", x), ("w", w)] + ([("b", b)] if bias else []) + [("g", g), ("y", y), ("dx", d[0]), ("dw", d[1])]
    if bias:
        out.append(("db", d[2]))
    y32 = F.conv2d(x, w, b, stride=stride, padding=padding, groups=groups)
    d32 = grads(y32, g.float(), x, w, *([b] if bias else []))
    out += [("y_f32", y32), ("dx_f32", d32[0]), ("dw_f32", d32[1])] + ([("db_f32", d32[2])] if bias else [])
    save(case, out, stride=stride, padding=padding, groups=groups, bias=bias)


def linear_case():
    r = mf.rng(1502)
    x, w, b = mf.leaf(mf.randn(r, 6, 20)), mf.leaf(mf.randn(r, 9, 20) * 0.3), mf.leaf(mf.randn(r, 9))
    with cast():
        y = F.linear(x, w, b)
    g = mf.randn(r, *y.shape).to(y.dtype)
    dx, dw, db = grads(y, g, x, w, b)
    y32 = F.linear(x, w, b)
    dx32, dw32, db32 = grads(y32, g.float(), x, w, b)
    save("linear", [("x", x), ("w", w), ("b", b), ("g", g), ("y", y), ("dx", dx), ("dw", dw), ("db", db),
                    ("y_f32", y32), ("dx_f32", dx32), ("dw_f32", dw32), ("db_f32", db32)])


def batchnorm_case():
    r = mf.rng(1503)
    C = 5
    x = mf.leaf((mf.randn(r, 3, C, 6, 7) * 1.5 + 0.5).to(BF))
    gamma, beta = mf.leaf(mf.randn(r, C) * 0.2 + 1.0), mf.leaf(mf.randn(r, C) * 0.2)
    rm = mf.randn(r, C) * 0.3
    rv = torch.from_numpy(r.uniform(0.5, 1.5, C)).to(torch.float32)
    rm_after, rv_after = rm.clone(), rv.clone()
    with cast():
        y = F.batch_norm(x, rm_after, rv_after, gamma, beta, training=True, momentum=0.1, eps=1e-5)
    g = mf.randn(r, *y.shape).to(y.dtype)
    dx, dgamma, dbeta = grads(y, g, x, gamma, beta)
    save("batchnorm2d_train", [("x", x), ("gamma", gamma), ("beta", beta), ("running_mean", rm), ("running_var", rv), ("g", g),
                               ("y", y), ("dx", dx), ("dgamma", dgamma), ("dbeta", dbeta),
                               ("running_mean_after", rm_after), ("running_var_after", rv_after)], momentum=0.1, eps=1e-5)


def unary_case(case, seed, fn, shape):
    r = mf.rng(seed)
    x = mf.leaf(mf.randn(r, *shape).to(BF))
    with cast():
        y = fn(x)
    g = mf.randn(r, *y.shape).to(y.dtype)
    (dx,) = grads(y, g, x)
    save(case, [("x", x), ("g", g), ("y", y), ("dx", dx)])


def add_cases():
    r = mf.rng(1510)
    a, b = mf.leaf(mf.randn(r, 2, 3, 5, 7).to(BF)), mf.leaf(mf.randn(r, 2, 3, 5, 7).to(BF))
    with cast():
        y = a + b
    g = mf.randn(r, *y.shape).to(y.dtype)
    da, db = grads(y, g, a, b)
    save("add", [("a", a), ("b", b), ("g", g), ("y", y), ("da", da), ("db", db)])
    a, b = mf.leaf(mf.randn(r, 2, 3, 5, 7).to(BF)), mf.leaf(mf.randn(r, 2, 3, 5, 7))
    with cast():
        y = a + b
    assert y.dtype == torch.float32
    g = mf.randn(r, *y.shape)
    da, db = grads(y, g, a, b)
    save("add_promote", [("a", a), ("b", b), ("g", g), ("y", y), ("da", da), ("db", db)])


def cross_entropy_case():
    r = mf.rng(1511)
    logits = mf.leaf((mf.randn(r, 6, 11) * 2).to(BF))
    labels = torch.tensor([0, 3, 10, 7, 3, 5], dtype=torch.int64)
    with cast():
        loss = F.cross_entropy(logits, labels)
    assert loss.dtype == torch.float32
    (dl,) = torch.autograd.grad(loss, (logits,))
    save("cross_entropy", [("logits", logits), ("labels", labels), ("loss", loss), ("dlogits", dl)])


def model_case():
    x = mf.det_input((2, 3, 16, 16))
    labels = torch.tensor([3, 5], dtype=torch.int64)
    model = mf.deterministic_init(mf.CifarResNet()).train()
    with cast():
        logits = model(x)
        loss = F.cross_entropy(logits, labels)
    loss.backward()
    out = [("x", x), ("labels", labels), ("logits", logits.detach()), ("loss", loss.detach())]
    for name, p in model.named_parameters():
        g = p.grad.detach().reshape(-1)
        g64 = g.double()
        out.append(("grad_stats." + name, torch.stack([g64.sum(), (g64 * g64).sum()])))
        out.append(("grad_head." + name, g[:min(16, g.numel())].clone()))
    model32 = mf.deterministic_init(mf.CifarResNet()).train()
    logits32 = model32(x)
    loss32 = F.cross_entropy(logits32, labels)
    loss32.backward()
    out += [("logits_f32", logits32.detach()), ("loss_f32", loss32.detach())]
    for name, p in model32.named_parameters():
        g64 = p.grad.detach().reshape(-1).double()
        out.append(("grad_stats_f32." + name, torch.stack([g64.sum(), (g64 * g64).sum()])))
    save("cifar_resnet20_bf16", out, model="cifar_resnet20", init_rule=mf.INIT_RULE)
    print("cifar_resnet20_bf16: loss %.6f, logits dtype %s" % (loss.item(), logits.dtype))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    conv_case("conv2d_3x3_bias", 1501, (2, 4, 9, 11), (6, 4, 3, 3), 1, 1, 1, True)
    conv_case("conv2d_stride2_groups2", 1504, (2, 6, 10, 9), (4, 3, 3, 3), 2, 1, 2, False)
    linear_case()
    batchnorm_case()
    unary_case("relu", 1505, torch.relu, (2, 3, 5, 7))
    unary_case("maxpool2d_3x3_s2_p1", 1506, lambda t: F.max_pool2d(t, 3, 2, 1), (2, 3, 9, 10))
    unary_case("avgpool2d_2", 1507, lambda t: F.avg_pool2d(t, 2), (2, 3, 8, 10))
    unary_case("global_avgpool", 1508, lambda t: F.adaptive_avg_pool2d(t, 1), (2, 3, 5, 7))
    add_cases()
    cross_entropy_case()
    model_case()
    print("wrote", sorted(os.listdir(AMP)))


if __name__ == "__main__":
    main()
