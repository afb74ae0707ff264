#!/usr/bin/python3
"""PyTorch reference fixtures for ResidualEngine's parity tests.

HOW TO RUN (from the repository root; needs Debian's torch 1.13 + torchvision 0.14 + numpy, i.e.
/usr/bin/python3, not the pyenv python3 first on PATH):

    /usr/bin/python3 Tools/reference/make_fixtures.py            # writes everything below
    /usr/bin/python3 Tools/reference/make_fixtures.py --check    # prints u(1000003, 0..7) and sizes only

The script is deterministic (fixed seeds, numpy generators, one CPU thread, deterministic torch
algorithms); re-running it rewrites the same files (up to torch-version rounding differences).
It writes safetensors files with its own small writer below (Debian's torch has no `safetensors`
package): u64 little-endian header size, JSON header with "__metadata__" first, data buffer;
header padded with spaces to a multiple of 8 bytes.

WHAT IT WRITES
==============

Tests/Fixtures/safetensors/torch_dtypes.safetensors
    One tensor per dtype made by torch, shape (2, 3): f64 f32 f16 bf16 hold (i - 2) * 0.75,
    i64 i32 hold i - 2, u8 holds i (i = 0..5 flat); "scalar" F32 shape () = -1.5; "empty" F32
    shape (0, 4). Header keys are sorted by name while the data is laid out by dtype size
    (largest first, as the safetensors library does), so header order != data order.
    Metadata {"writer": "torch"}.

Tests/Fixtures/ops/<case>.safetensors  (op parity; F32 unless stated)
    Everything is COMPUTED IN FLOAT32 by torch on the CPU (inputs drawn in float64 by numpy,
    cast to float32), so our F32 path is compared with atol 1e-4 / rtol 1e-3, not bit-exactly.
    Unless stated, the gradients are those of loss = sum(y * r) for a stored random "r" shaped
    like y. __metadata__ holds "op" plus the op's options as strings, and "keys".
    conv2d_*        x (N,C,H,W), w (K,C/groups,R,S), b (K) [if bias], r, y, dx, dw, db [if bias];
                    meta: stride, padding, dilation, groups, bias ("true"/"false").
                    cases: conv2d_3x3_pad1, conv2d_stride2, conv2d_dilation2, conv2d_groups2,
                    conv2d_depthwise, conv2d_1x1_stride2_nobias, conv2d_7x7_stride2_pad3 (odd input).
    batchnorm2d_train / batchnorm2d_eval
                    x, gamma, beta, running_mean, running_var (before), r, y, dx, dgamma, dbeta,
                    running_mean_after, running_var_after (after one forward; unchanged in eval);
                    meta: training, momentum 0.1, eps 1e-5.
    relu, silu      x, r, y, dx.
    add             a, b, r, y, da, db (same shapes).
    maxpool2d_*     x, r, y, dx; meta: kernel, stride, padding, ceil_mode.
                    cases: maxpool2d_3x3_s2_p1 (ResNet stem), maxpool2d_ceil, maxpool2d_ceil_pad.
    avgpool2d_*     x, r, y, dx; meta: kernel, stride, padding, ceil_mode, count_include_pad.
                    cases: avgpool2d_include_pad, avgpool2d_exclude_pad, avgpool2d_ceil_include_pad,
                    avgpool2d_ceil_exclude_pad.
    global_avgpool  x, r, y (N,C,1,1) = adaptive_avg_pool2d(x, 1), dx.
    linear / linear_nobias   x (N,in), w (out,in), b (out) [if bias], r, y, dx, dw, db [if bias].
    flatten         x (2,3,4,5), r, y = flatten(x, 1), dx; meta: start_dim 1.
    shortcut_a      x, r, y, dx; y = pad(x[:, :, ::2, ::2], out_channels - C zero channels, half on
                    each side); meta: out_channels, stride.
    cross_entropy_mean / cross_entropy_smooth01
                    logits (N,K), labels (N) I64, loss () = cross_entropy(logits, labels, mean,
                    label_smoothing), dlogits = d loss / d logits (no "r": the loss is the output);
                    meta: label_smoothing, reduction "mean".
    sgd_momentum / sgd_nesterov / sgd_dampening
                    torch.optim.SGD on params p0 (3,4), p1 (5), p2 (2,3,1,1), 3 steps, one group:
                    "p{j}" initial values, "grad{s}.p{j}" the gradient fed at step s (1..3),
                    "step{s}.p{j}" the parameter after step s; meta: lr, momentum, dampening,
                    weight_decay, nesterov, steps.

Tests/Fixtures/models/*.safetensors  (whole-model parity, for the models helper)
    Weights are NOT stored: they come from a counter-based generator the C# side reimplements
    (Tests/Models/DeterministicInit.cs):
      mix(z): z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
              return z ^ (z >> 31)                                   (uint64, wrapping)
      u(seed, i) = (mix(seed + (i + 1) * 0x9E3779B97F4A7C15) >> 11) * 2^-53    (float64 in [0,1))
      i = flat row-major element index. For the k-th state_dict entry (0-based, PyTorch order,
      buffers included) seed = 1000003 * (k + 1), v = 2u - 1:
        rank >= 2 (conv/linear weight): v * sqrt(3 / fan_in), fan_in = numel / shape[0]
        BN weight (module has running_mean): 1 + 0.1 v;   BN bias: 0.1 v
        running_mean: 0.1 v;   running_var: 1 + 0.25 u;   num_batches_tracked: 0
        any other rank-1 tensor (fc.bias): 0.1 v
      computed in float64, cast to float32. Input x: x_i = 2 u(7, i) - 1 (float64 -> float32).
    Every model file holds "check_u" F64 (8) = u(1000003, 0..7) and metadata describing all this.
    resnet18_64      torchvision resnet18(num_classes=10), train mode, x (2,3,64,64), labels [1, 7].
    cifar_resnet20   He et al.'s CIFAR ResNet-20 (defined below; option-A shortcuts), train mode,
                     x (2,3,32,32), labels [3, 5].
        both store: x, labels (I64), logits (2,10), loss () = cross_entropy mean;
        "init_head.<entry>" the first min(16, numel) initial values of every state_dict entry;
        per parameter p (not buffers): "grad_stats.<p>" F64 [sum, sum of squares] of the gradient,
        "grad_head.<p>" first min(64, numel) gradient elements, "grad_strided.<p>" the elements at
        flat indices (i * numel) // 64, i = 0..63 (all elements if numel < 64);
        "sgd_losses" (3): losses of 3 training steps from fresh deterministic weights (same x,
        labels; torch.optim.SGD lr 0.1, momentum 0.9, weight_decay 1e-4 on every parameter; loss
        computed, backward, step) and "bn1.running_mean_after" after those 3 steps.
    preact_block     one pre-activation basic block, in 16, out 32, stride 2, projection shortcut:
                     bn1(16), conv1 3x3 s2 p1 (32,16,3,3), bn2(32), conv2 3x3 p1 (32,32,3,3),
                     downsample.0 1x1 s2 (32,16,1,1) no bias; a = relu(bn1(x));
                     out = conv2(relu(bn2(conv1(a)))) + downsample(a); train mode; x (2,16,9,9).
                     Stores x, r, out, loss = sum(out * r), "dx", "init.<entry>" (the whole initial
                     state_dict), "grad.<p>" (full) for every parameter, and
                     "<bn>.running_mean_after"/"<bn>.running_var_after".
    Model metadata also has "state_dict_order" (comma-separated names) and "state_dict_shapes"
    (JSON object name -> shape), so the C# model's names, order and shapes can be checked.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIX = os.path.join(ROOT, "Tests", "Fixtures")

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

OPS_NOTE = ("computed in float32 by torch %s on the CPU from float64 numpy inputs cast to float32; "
            "compare an F32 implementation with atol 1e-4, rtol 1e-3" % torch.__version__)

# ---------------------------------------------------------------- safetensors writer

_DT = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
       torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8"}


def _raw(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    a = t.numpy()
    return a.astype(a.dtype.newbyteorder("<")).tobytes()


def save(path, tensors, metadata=None, header_order=None):
    """tensors: list of (name, torch tensor) in data order; header_order: optional key order for the JSON."""
    names = [n for n, _ in tensors]
    assert len(set(names)) == len(names), "duplicate tensor names"
    header, blobs, off = {}, [], 0
    entries = {}
    for name, t in tensors:
        b = _raw(t)
        entries[name] = {"dtype": _DT[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for n in (header_order or names):
        header[n] = entries[n]
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------- random inputs


def rng(seed):
    return np.random.default_rng(seed)


def randn(g, *shape):
    return torch.from_numpy(g.standard_normal(shape)).to(torch.float32)


def leaf(t):
    return t.clone().requires_grad_(True)


def grad_of(y, r, *inputs):
    """Gradients of sum(y * r) with respect to inputs (None for an input that gets none)."""
    return torch.autograd.grad((y * r).sum(), inputs, allow_unused=True)


def meta(op, keys, **opts):
    m = {"op": op, "keys": keys, "note": OPS_NOTE}
    for k, v in opts.items():
        m[k] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return m


def ops_path(case):
    return os.path.join(FIX, "ops", case + ".safetensors")


# ---------------------------------------------------------------- op fixtures


def conv_case(case, seed, x_shape, w_shape, stride, padding, dilation, groups, bias):
    g = rng(seed)
    x, w = leaf(randn(g, *x_shape)), leaf(randn(g, *w_shape) * 0.3)
    b = leaf(randn(g, w_shape[0])) if bias else None
    y = F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    r = randn(g, *y.shape)
    grads = grad_of(y, r, x, w, *( [b] if bias else []))
    out = [("x", x), ("w", w)] + ([("b", b)] if bias else []) + [("r", r), ("y", y), ("dx", grads[0]), ("dw", grads[1])]
    if bias:
        out.append(("db", grads[2]))
    save(ops_path(case), out, meta("conv2d", ",".join(n for n, _ in out), stride=stride, padding=padding,
                                   dilation=dilation, groups=groups, bias=bias))


def batchnorm_case(case, seed, training):
    g = rng(seed)
    N, C, H, W = 2, 3, 7, 9
    x = leaf(randn(g, N, C, H, W) * 1.5 + 0.5)
    gamma = leaf(randn(g, C) * 0.2 + 1.0)
    beta = leaf(randn(g, C) * 0.2)
    rm = randn(g, C) * 0.3
    rv = torch.from_numpy(g.uniform(0.5, 1.5, C)).to(torch.float32)
    rm_after, rv_after = rm.clone(), rv.clone()
    y = F.batch_norm(x, rm_after, rv_after, gamma, beta, training=training, momentum=0.1, eps=1e-5)
    r = randn(g, *y.shape)
    dx, dgamma, dbeta = grad_of(y, r, x, gamma, beta)
    out = [("x", x), ("gamma", gamma), ("beta", beta), ("running_mean", rm), ("running_var", rv), ("r", r), ("y", y),
           ("dx", dx), ("dgamma", dgamma), ("dbeta", dbeta), ("running_mean_after", rm_after), ("running_var_after", rv_after)]
    save(ops_path(case), out, meta("batchnorm2d", ",".join(n for n, _ in out), training=training, momentum=0.1, eps=1e-5))


def unary_case(case, seed, op, fn, x_shape, **opts):
    g = rng(seed)
    x = leaf(randn(g, *x_shape))
    y = fn(x)
    r = randn(g, *y.shape)
    (dx,) = grad_of(y, r, x)
    out = [("x", x), ("r", r), ("y", y), ("dx", dx)]
    save(ops_path(case), out, meta(op, "x,r,y,dx", **opts))


def add_case():
    g = rng(301)
    a, b = leaf(randn(g, 2, 3, 7, 9)), leaf(randn(g, 2, 3, 7, 9))
    y = a + b
    r = randn(g, *y.shape)
    da, db = grad_of(y, r, a, b)
    save(ops_path("add"), [("a", a), ("b", b), ("r", r), ("y", y), ("da", da), ("db", db)], meta("add", "a,b,r,y,da,db"))


def linear_case(case, seed, bias):
    g = rng(seed)
    x, w = leaf(randn(g, 5, 7)), leaf(randn(g, 4, 7) * 0.4)
    b = leaf(randn(g, 4)) if bias else None
    y = F.linear(x, w, b)
    r = randn(g, *y.shape)
    grads = grad_of(y, r, x, w, *([b] if bias else []))
    out = [("x", x), ("w", w)] + ([("b", b)] if bias else []) + [("r", r), ("y", y), ("dx", grads[0]), ("dw", grads[1])]
    if bias:
        out.append(("db", grads[2]))
    save(ops_path(case), out, meta("linear", ",".join(n for n, _ in out), bias=bias))


def shortcut_a(x, out_channels, stride):
    """Option-A shortcut: subsample, then zero channels split evenly before and after."""
    s = x[:, :, ::stride, ::stride]
    extra = out_channels - x.shape[1]
    return F.pad(s, (0, 0, 0, 0, extra // 2, extra - extra // 2))


def cross_entropy_case(case, seed, smoothing):
    g = rng(seed)
    logits = leaf(randn(g, 5, 7) * 2)
    labels = torch.tensor([0, 6, 3, 3, 1], dtype=torch.int64)
    loss = F.cross_entropy(logits, labels, reduction="mean", label_smoothing=smoothing)
    (dlogits,) = torch.autograd.grad(loss, logits)
    out = [("logits", logits), ("labels", labels), ("loss", loss), ("dlogits", dlogits)]
    save(ops_path(case), out, meta("cross_entropy", "logits,labels,loss,dlogits", label_smoothing=smoothing, reduction="mean"))


def sgd_case(case, seed, momentum, dampening, weight_decay, nesterov, lr=0.1, steps=3):
    g = rng(seed)
    shapes = [(3, 4), (5,), (2, 3, 1, 1)]
    params = [nn.Parameter(randn(g, *s)) for s in shapes]
    out = [("p%d" % j, p.detach().clone()) for j, p in enumerate(params)]
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
    for s in range(1, steps + 1):
        for j, p in enumerate(params):
            p.grad = randn(g, *p.shape)
            out.append(("grad%d.p%d" % (s, j), p.grad.clone()))
        opt.step()
        for j, p in enumerate(params):
            out.append(("step%d.p%d" % (s, j), p.detach().clone()))
    save(ops_path(case), out, meta("sgd", "p{j}, grad{s}.p{j}, step{s}.p{j}", lr=lr, momentum=momentum, dampening=dampening,
                                   weight_decay=weight_decay, nesterov=nesterov, steps=steps))


def make_ops():
    conv_case("conv2d_3x3_pad1", 101, (2, 3, 7, 9), (4, 3, 3, 3), 1, 1, 1, 1, True)
    conv_case("conv2d_stride2", 102, (2, 3, 7, 9), (4, 3, 3, 3), 2, 1, 1, 1, True)
    conv_case("conv2d_dilation2", 103, (2, 3, 7, 9), (4, 3, 3, 3), 1, 2, 2, 1, True)
    conv_case("conv2d_groups2", 104, (2, 4, 7, 9), (6, 2, 3, 3), 1, 1, 1, 2, True)
    conv_case("conv2d_depthwise", 105, (2, 4, 7, 9), (4, 1, 3, 3), 1, 1, 1, 4, True)
    conv_case("conv2d_1x1_stride2_nobias", 106, (2, 3, 7, 9), (5, 3, 1, 1), 2, 0, 1, 1, False)
    conv_case("conv2d_7x7_stride2_pad3", 107, (2, 3, 11, 13), (4, 3, 7, 7), 2, 3, 1, 1, True)
    batchnorm_case("batchnorm2d_train", 201, True)
    batchnorm_case("batchnorm2d_eval", 202, False)
    unary_case("relu", 203, "relu", F.relu, (2, 3, 7, 9))
    unary_case("silu", 204, "silu", F.silu, (2, 3, 7, 9))
    add_case()
    unary_case("maxpool2d_3x3_s2_p1", 401, "maxpool2d", lambda x: F.max_pool2d(x, 3, 2, 1), (2, 3, 7, 9),
               kernel=3, stride=2, padding=1, ceil_mode=False)
    unary_case("maxpool2d_ceil", 402, "maxpool2d", lambda x: F.max_pool2d(x, 3, 2, 0, ceil_mode=True), (2, 3, 8, 10),
               kernel=3, stride=2, padding=0, ceil_mode=True)
    unary_case("maxpool2d_ceil_pad", 403, "maxpool2d", lambda x: F.max_pool2d(x, 2, 2, 1, ceil_mode=True), (2, 3, 7, 9),
               kernel=2, stride=2, padding=1, ceil_mode=True)
    for case, seed, ceil, inc, shape in [("avgpool2d_include_pad", 501, False, True, (2, 3, 7, 9)),
                                         ("avgpool2d_exclude_pad", 502, False, False, (2, 3, 7, 9)),
                                         ("avgpool2d_ceil_include_pad", 503, True, True, (2, 3, 8, 10)),
                                         ("avgpool2d_ceil_exclude_pad", 504, True, False, (2, 3, 8, 10))]:
        unary_case(case, seed, "avgpool2d",
                   lambda x, c=ceil, i=inc: F.avg_pool2d(x, 3, 2, 1, ceil_mode=c, count_include_pad=i), shape,
                   kernel=3, stride=2, padding=1, ceil_mode=ceil, count_include_pad=inc)
    unary_case("global_avgpool", 601, "global_avgpool", lambda x: F.adaptive_avg_pool2d(x, 1), (2, 3, 7, 9))
    linear_case("linear", 701, True)
    linear_case("linear_nobias", 702, False)
    unary_case("flatten", 801, "flatten", lambda x: torch.flatten(x, 1), (2, 3, 4, 5), start_dim=1)
    unary_case("shortcut_a", 901, "shortcut_a", lambda x: shortcut_a(x, 8, 2), (2, 4, 7, 9), out_channels=8, stride=2)
    cross_entropy_case("cross_entropy_mean", 1001, 0.0)
    cross_entropy_case("cross_entropy_smooth01", 1002, 0.1)
    sgd_case("sgd_momentum", 1101, momentum=0.9, dampening=0.0, weight_decay=1e-4, nesterov=False)
    sgd_case("sgd_nesterov", 1102, momentum=0.9, dampening=0.0, weight_decay=1e-4, nesterov=True)
    sgd_case("sgd_dampening", 1103, momentum=0.9, dampening=0.1, weight_decay=1e-4, nesterov=False)


# ---------------------------------------------------------------- safetensors dtype fixture


def make_dtypes():
    f = (torch.arange(6, dtype=torch.float64) - 2) * 0.75
    i = torch.arange(6, dtype=torch.int64) - 2
    ts = {"f64": f.reshape(2, 3), "f32": f.float().reshape(2, 3), "f16": f.half().reshape(2, 3),
          "bf16": f.bfloat16().reshape(2, 3), "i64": i.reshape(2, 3), "i32": i.int().reshape(2, 3),
          "u8": torch.arange(6, dtype=torch.uint8).reshape(2, 3),
          "scalar": torch.tensor(-1.5, dtype=torch.float32), "empty": torch.zeros(0, 4)}
    # Data ordered as the safetensors library does (element size descending, then name); header sorted by name.
    data_order = sorted(ts, key=lambda n: (-ts[n].element_size(), n))
    save(os.path.join(FIX, "safetensors", "torch_dtypes.safetensors"), [(n, ts[n]) for n in data_order],
         {"writer": "torch"}, header_order=sorted(ts))


# ---------------------------------------------------------------- deterministic init (models)

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
M1 = np.uint64(0xBF58476D1CE4E5B9)
M2 = np.uint64(0x94D049BB133111EB)


def mix(z):
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * M1
        z = (z ^ (z >> np.uint64(27))) * M2
        return z ^ (z >> np.uint64(31))


def u(seed, n):
    """u(seed, i) for i = 0..n-1, float64 in [0, 1)."""
    i = np.arange(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (i + np.uint64(1)) * GOLDEN
    return (mix(z) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def _u_scalar(seed, i):
    """Plain-integer version of u, to cross-check the numpy one."""
    m = (1 << 64) - 1
    z = (seed + (i + 1) * 0x9E3779B97F4A7C15) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    z = z ^ (z >> 31)
    return (z >> 11) * 2.0 ** -53


INIT_RULE = ("k-th state_dict entry (0-based, buffers included), seed = 1000003*(k+1), u(seed,i) = "
             "(mix(seed + (i+1)*0x9E3779B97F4A7C15) >> 11) * 2^-53 with splitmix64's mix, i = flat index, v = 2u-1; "
             "rank>=2: v*sqrt(3/fan_in), fan_in = numel/shape[0]; BN weight (module has running_mean): 1+0.1v; BN bias: 0.1v; "
             "running_mean: 0.1v; running_var: 1+0.25u; num_batches_tracked: 0; other rank-1: 0.1v; float64 cast to float32. "
             "x_i = 2u(7,i)-1")


def deterministic_init(model):
    sd = model.state_dict()
    new = {}
    for k, (name, t) in enumerate(sd.items()):
        n = t.numel()
        uu = u(1000003 * (k + 1), n)
        v = 2 * uu - 1
        module = name.rsplit(".", 1)[0] if "." in name else ""
        is_bn = (module + ".running_mean" if module else "running_mean") in sd
        if name.endswith("num_batches_tracked"):
            new[name] = torch.zeros_like(t)
            continue
        if name.endswith("running_mean"):
            a = 0.1 * v
        elif name.endswith("running_var"):
            a = 1 + 0.25 * uu
        elif t.dim() >= 2:
            a = v * math.sqrt(3.0 / (n / t.shape[0]))
        elif is_bn and name.endswith(".weight"):
            a = 1 + 0.1 * v
        elif is_bn and name.endswith(".bias"):
            a = 0.1 * v
        elif t.dim() == 1:
            a = 0.1 * v
        else:
            raise ValueError("no init rule for %s %s" % (name, tuple(t.shape)))
        new[name] = torch.from_numpy(a.reshape(tuple(t.shape))).to(t.dtype)
    model.load_state_dict(new)
    return model


def det_input(shape):
    n = int(np.prod(shape))
    return torch.from_numpy((2 * u(7, n) - 1).reshape(shape)).to(torch.float32)


def check_u():
    return torch.from_numpy(u(1000003, 8))


# ---------------------------------------------------------------- models


class CifarBasicBlock(nn.Module):
    """He et al. 2015's CIFAR block: two 3x3 convs with BN; option-A shortcut when the shape changes."""

    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.project = stride != 1 or inp != planes
        self.planes = planes

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.project:
            # x[:, :, ::2, ::2] padded with planes // 4 zero channels on each side
            sc = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.planes // 4, self.planes // 4))
        else:
            sc = x
        return F.relu(out + sc)


class CifarResNet(nn.Module):
    def __init__(self, n=3, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._layer(16, 16, n, 1)
        self.layer2 = self._layer(16, 32, n, 2)
        self.layer3 = self._layer(32, 64, n, 2)
        self.fc = nn.Linear(64, num_classes)

    @staticmethod
    def _layer(inp, planes, n, stride):
        return nn.Sequential(*[CifarBasicBlock(inp if i == 0 else planes, planes, stride if i == 0 else 1) for i in range(n)])

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


class PreActBlock(nn.Module):
    """He et al. 2016's full pre-activation basic block with a 1x1 projection shortcut."""

    def __init__(self, inp=16, planes=32, stride=2):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inp)
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.downsample = nn.Sequential(nn.Conv2d(inp, planes, 1, stride, bias=False))

    def forward(self, x):
        a = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(a))))
        return out + self.downsample(a)


def grad_summaries(model):
    out = []
    for name, p in model.named_parameters():
        gr = p.grad.detach().reshape(-1)
        n = gr.numel()
        g64 = gr.double()
        out.append(("grad_stats." + name, torch.stack([g64.sum(), (g64 * g64).sum()])))
        out.append(("grad_head." + name, gr[:min(64, n)].clone()))
        idx = torch.arange(n) if n < 64 else torch.tensor([(i * n) // 64 for i in range(64)])
        out.append(("grad_strided." + name, gr[idx].clone()))
    return out


def init_heads(make_model):
    """"init_head.<name>": the first min(16, numel) initial values of every state_dict entry."""
    sd = deterministic_init(make_model()).state_dict()
    return [("init_head." + n, t.reshape(-1)[:16].clone()) for n, t in sd.items()]


def state_dict_meta(model):
    sd = model.state_dict()
    return {"state_dict_order": ",".join(sd.keys()),
            "state_dict_shapes": json.dumps({n: list(t.shape) for n, t in sd.items()}, separators=(",", ":"))}


def classifier_fixture(name, make_model, x_shape, labels):
    x = det_input(x_shape)
    lab = torch.tensor(labels, dtype=torch.int64)

    model = deterministic_init(make_model()).train()
    logits = model(x)
    loss = F.cross_entropy(logits, lab)
    loss.backward()
    out = [("check_u", check_u()), ("x", x), ("labels", lab), ("logits", logits.detach()), ("loss", loss.detach())]
    out += init_heads(make_model)
    out += grad_summaries(model)

    model = deterministic_init(make_model()).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        step_loss = F.cross_entropy(model(x), lab)
        step_loss.backward()
        opt.step()
        losses.append(step_loss.detach())
    out.append(("sgd_losses", torch.stack(losses)))
    out.append(("bn1.running_mean_after", model.bn1.running_mean.detach().clone()))
    md = {"model": name, "mode": "train", "init_rule": INIT_RULE, "torch": torch.__version__, **state_dict_meta(model),
          "keys": "check_u, x, labels, logits, loss (cross_entropy mean), init_head.<entry> (first min(16,numel) initial "
                  "values of every state_dict entry), grad_stats.<p> F64 [sum, sumsq], "
                  "grad_head.<p> (first min(64,numel)), grad_strided.<p> (flat indices (i*numel)//64, i<64; all if numel<64), "
                  "sgd_losses (3 steps, SGD lr 0.1 momentum 0.9 weight_decay 1e-4, fresh weights), bn1.running_mean_after",
          "sgd": "lr=0.1,momentum=0.9,weight_decay=0.0001,dampening=0,nesterov=false"}
    save(os.path.join(FIX, "models", name + ".safetensors"), out, md)
    print("%s: loss %.6f, sgd losses %s" % (name, loss.item(), [round(v.item(), 6) for v in losses]))


def preact_fixture():
    model = deterministic_init(PreActBlock()).train()
    x = det_input((2, 16, 9, 9)).requires_grad_(True)
    out = model(x)
    r = torch.from_numpy(rng(1201).standard_normal(tuple(out.shape))).to(torch.float32)
    loss = (out * r).sum()
    loss.backward()
    items = [("check_u", check_u()), ("x", x.detach()), ("r", r), ("out", out.detach()), ("loss", loss.detach()), ("dx", x.grad)]
    items += [("init." + n, t.clone()) for n, t in deterministic_init(PreActBlock()).state_dict().items()]
    items += [("grad." + n, p.grad.clone()) for n, p in model.named_parameters()]
    for bn in ("bn1", "bn2"):
        m = getattr(model, bn)
        items += [(bn + ".running_mean_after", m.running_mean.clone()), (bn + ".running_var_after", m.running_var.clone())]
    md = {"model": "preact_block", "mode": "train", "init_rule": INIT_RULE, "torch": torch.__version__, **state_dict_meta(model),
          "forward": "a = relu(bn1(x)); out = conv2(relu(bn2(conv1(a)))) + downsample(a); conv1 3x3 s2 p1, conv2 3x3 s1 p1, "
                     "downsample.0 1x1 s2 no bias",
          "keys": "check_u, x, r (seeded normal), out, loss = sum(out*r), dx, init.<entry> (the full initial state_dict), "
                  "grad.<p> for every parameter, "
                  "bn1/bn2.running_mean_after/running_var_after (after the one forward)"}
    save(os.path.join(FIX, "models", "preact_block.safetensors"), items, md)


def main():
    for i in range(8):
        assert abs(_u_scalar(1000003, i) - u(1000003, 8)[i]) == 0.0
    print("u(1000003, 0..7) =", ["%.17g" % v for v in u(1000003, 8)])
    if "--check" in sys.argv:
        return
    make_dtypes()
    make_ops()
    import torchvision
    classifier_fixture("resnet18_64", lambda: torchvision.models.resnet18(num_classes=10), (2, 3, 64, 64), [1, 7])
    classifier_fixture("cifar_resnet20", lambda: CifarResNet(3, 10), (2, 3, 32, 32), [3, 5])
    preact_fixture()
    total = 0
    for d, _, files in os.walk(FIX):
        for f in sorted(files):
            if f.endswith(".safetensors"):
                p = os.path.join(d, f)
                total += os.path.getsize(p)
                print("%8d  %s" % (os.path.getsize(p), os.path.relpath(p, ROOT)))
    print("%8d  total" % total)


if __name__ == "__main__":
    main()
