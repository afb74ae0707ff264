// Every backend op (the members of IBackend beyond memory), as a case that runs on any backend in any
// "variant": element type (F64, F32, BF16, F16) and memory format (NCHW or channels-last) of its
// activations. Inputs come from one seeded F64 NCHW master set; a variant converts them (4-d
// activations to its format, floats to its dtype; BN's parameters and statistics stay F32 for 16-bit
// activations, as the backends require). Outputs start NaN-poisoned and are returned in logical
// order, so any two runs can be compared element for element. Used by the CPU tests
// (Ops/MixedPrecisionBackendTests.cs) and the CPU-vs-CUDA tests (Backends/Cuda/CudaMixedParityTests.cs).
using ResidualEngine.Backends;
using ResidualEngine.Pointwise;

namespace ResidualEngine.Tests.Backends;

/// <summary>How a run lays out and types its activations, and on which device.</summary>
public sealed record Variant(DType DType, MemoryFormat Format, Device Device)
{
    /// <summary>When set, float inputs are first rounded through this type (the exact F32 reference of a 16-bit run).</summary>
    public DType? RoundVia { get; init; }

    /// <summary>BN parameters and statistics, the found-inf flag: F32 for 16-bit activations, else the activation type.</summary>
    public DType ParamType => DType.Is16Bit() ? DType.F32 : DType;

    public override string ToString() => $"{DType} {(Format == MemoryFormat.ChannelsLast ? "NHWC" : "NCHW")} {Device}";

    /// <summary>A float activation in this variant (4-d ones in its format).</summary>
    public Tensor In(Tensor master) => Convert(master, DType, master.Rank == 4 ? Format : MemoryFormat.Contiguous);

    /// <summary>A per-channel parameter or statistic (BN) in the parameter type (F32 as given, even in a rounded reference run).</summary>
    public Tensor Param(Tensor master) => master.To(ParamType).To(Device);

    /// <summary>Labels and other integer tensors: only moved.</summary>
    public Tensor Plain(Tensor master) => master.To(Device);

    /// <summary>An output: NaN for floats, -7 for integers.</summary>
    public Tensor Out(Shape s, DType? dt = null, bool param = false)
    {
        var t = Tensor.Empty(s, dt ?? (param ? ParamType : DType), Device, s.Rank == 4 ? Format : MemoryFormat.Contiguous);
        t.Backend.Fill(t, t.DType.IsFloat() ? double.NaN : -7);
        return t;
    }

    private Tensor Convert(Tensor master, DType dt, MemoryFormat fmt)
    {
        var v = master;
        if (RoundVia is { } r) v = v.To(r);
        v = v.To(dt).To(fmt);
        return v.To(Device);
    }
}

/// <summary>One op (or a forward/backward pair) of the backend contract. <paramref name="OrderDependent"/> lists the outputs
/// that are sums whose order follows the memory layout (SumTo over a channels-last tensor walks it in another order),
/// so that NCHW and NHWC runs agree on them to rounding, not bit for bit.</summary>
public sealed record OpCase(string Name, Func<Random, Tensor[]> Inputs, Func<IBackend, Variant, Tensor[], Tensor[]> Run, bool HasFormat = true,
    int[]? OrderDependent = null)
{
    public override string ToString() => Name;
}

public static class OpVariants
{
    private static Tensor R(Random rng, params int[] dims) => Tensor.Rand(new Shape(dims), rng, -1, 1, DType.F64);
    private static Tensor R(Random rng, double lo, double hi, params int[] dims) => Tensor.Rand(new Shape(dims), rng, lo, hi, DType.F64);

    /// <summary>Every case, with odd sizes.</summary>
    public static IReadOnlyList<OpCase> All { get; } =
    [
        Conv("conv_3x3_pad1_bias", 2, 5, 9, 11, 7, 3, Conv2dParams.Of(1, 1), bias: true),
        Conv("conv_stride2_dil2_groups2", 2, 6, 12, 9, 4, 3, Conv2dParams.Of(2, 2, 2, 2), bias: false),
        Conv("conv_1x1_stride2", 3, 8, 7, 7, 12, 1, Conv2dParams.Of(2, 0), bias: true),
        new("batchnorm_train_backward", rng => [R(rng, 0.4, 0.6, 3, 7, 5, 6), R(rng, 0.5, 1.5, 7), R(rng, 7), R(rng, 7), R(rng, 0.5, 2, 7), R(rng, 3, 7, 5, 6)],
            (be, v, m) =>
            {
                var x = v.In(m[0]); var g = v.Param(m[1]); var b = v.Param(m[2]); var rm = v.Param(m[3]); var rv = v.Param(m[4]); var dy = v.In(m[5]);
                var y = v.Out(x.Shape); var sm = v.Out(new Shape(7), param: true); var si = v.Out(new Shape(7), param: true);
                be.BatchNormForwardTraining(y, x, g, b, rm, rv, sm, si, 0.1, 1e-5);
                var dx = v.Out(x.Shape); var dg = v.Out(new Shape(7), param: true); var db = v.Out(new Shape(7), param: true);
                be.BatchNormBackward(dx, dg, db, dy, x, g, sm, si);
                return [y, sm, si, rm, rv, dx, dg, db];
            }),
        new("batchnorm_act_residual_relu", rng => [R(rng, 0.4, 0.6, 3, 7, 5, 6), R(rng, 0.5, 1.5, 7), R(rng, 7), R(rng, 7), R(rng, 0.5, 2, 7), R(rng, 3, 7, 5, 6), R(rng, 3, 7, 5, 6)],
            (be, v, m) =>
            {
                var x = v.In(m[0]); var g = v.Param(m[1]); var b = v.Param(m[2]); var rm = v.Param(m[3]); var rv = v.Param(m[4]);
                var res = v.In(m[5]); var dy = v.In(m[6]);
                var y = v.Out(x.Shape); var sm = v.Out(new Shape(7), param: true); var si = v.Out(new Shape(7), param: true);
                be.BatchNormActForwardTraining(y, x, g, b, rm, rv, sm, si, 0.1, 1e-5, res, relu: true);
                var dx = v.Out(x.Shape); var dg = v.Out(new Shape(7), param: true); var db = v.Out(new Shape(7), param: true); var dres = v.Out(x.Shape);
                be.BatchNormActBackward(dx, dg, db, dres, dy, y, x, g, sm, si, relu: true);
                return [y, sm, si, rm, rv, dx, dg, db, dres];
            }),
        new("conv_fused_bias_residual_relu", rng => [R(rng, 2, 4, 8, 9), R(rng, 6, 4, 3, 3), R(rng, 6), R(rng, 2, 6, 8, 9)],
            (be, v, m) =>
            {
                var y = v.Out(new Shape(2, 6, 8, 9));
                be.ConvForwardFused(y, v.In(m[0]), v.In(m[1]), v.In(m[2]), v.In(m[3]), relu: true, Conv2dParams.Of(1, 1), null);
                return [y];
            }),
        new("batchnorm_inference", rng => [R(rng, 3, 7, 5, 6), R(rng, 0.5, 1.5, 7), R(rng, 7), R(rng, 7), R(rng, 0.5, 2, 7)],
            (be, v, m) =>
            {
                var x = v.In(m[0]);
                var y = v.Out(x.Shape);
                be.BatchNormForwardInference(y, x, v.Param(m[1]), v.Param(m[2]), v.Param(m[3]), v.Param(m[4]), 1e-5);
                return [y];
            }),
        Pool("maxpool_3x3_s2_p1", Pool2dParams.Of(3, 2, 1), max: true),
        Pool("avgpool_3_s2_p1_ceil_exclude", Pool2dParams.Of(3, 2, 1, ceilMode: true, countIncludePad: false), max: false),
        new("global_avgpool", rng => [R(rng, 3, 5, 7, 9), R(rng, 3, 5, 1, 1)],
            (be, v, m) =>
            {
                var x = v.In(m[0]);
                var y = v.Out(new Shape(3, 5, 1, 1));
                be.GlobalAvgPoolForward(y, x);
                var dx = v.Out(x.Shape);
                be.GlobalAvgPoolBackward(dx, v.In(m[1]));
                return [y, dx];
            }),
        new("shortcut_a_stride2", rng => [R(rng, 2, 4, 7, 8), R(rng, 2, 8, 4, 4)],
            (be, v, m) =>
            {
                var x = v.In(m[0]);
                var y = v.Out(new Shape(2, 8, 4, 4));
                be.ShortcutAForward(y, x, 2, 2);
                var dx = v.Out(x.Shape);
                be.ShortcutABackward(dx, v.In(m[1]), 2, 2);
                return [y, dx];
            }),
        new("gemm_variants", rng => [R(rng, 5, 7), R(rng, 9, 7), R(rng, 7, 9), R(rng, 5, 9)],
            (be, v, m) =>
            {
                var a = v.In(m[0]); var bt = v.In(m[1]); var b = v.In(m[2]);
                var c1 = v.Out(new Shape(5, 9));
                be.Gemm(c1, a, bt, false, true, 1, 0);
                var c2 = v.In(m[3]);
                be.Gemm(c2, a, b, false, false, 0.5, 2);
                var c3 = v.Out(new Shape(7, 7));
                be.Gemm(c3, bt, bt, true, false, 1, 0);
                return [c1, c2, c3];
            }, HasFormat: false),
        new("softmax_cross_entropy", rng => [R(rng, -3.0, 3.0, 6, 11), R(rng, 0.0, 1.0, 6, 11), R(rng, 0.5, 1.5, 1)],
            (be, v, m) =>
            {
                var labels = Tensor.FromArray(new long[] { 0, 3, 10, 7, 3, 5 }, new Shape(6)).To(v.Device);
                var loss = v.Out(Shape.Scalar); var probs = v.Out(new Shape(6, 11));
                be.SoftmaxCrossEntropyForward(loss, probs, v.In(m[0]), labels, 0.1);
                // The backward gets its own probabilities and dLoss, so that every run sees the same inputs.
                var dl = v.Out(new Shape(6, 11));
                using var dLoss = v.In(m[2]).View(Shape.Scalar);
                be.SoftmaxCrossEntropyBackward(dl, dLoss, v.In(m[1]), labels, 0.1);
                return [loss, probs, dl];
            }, HasFormat: false),
        new("sgd_momentum_nesterov", rng => [R(rng, 4, 3, 3, 3), R(rng, 4, 3, 3, 3), R(rng, 4, 3, 3, 3)],
            (be, v, m) =>
            {
                var p = v.In(m[0]); var g = v.In(m[1]); var buf = v.In(m[2]);
                be.SgdUpdate(p, g, buf, 0.1, 0.9, 0, 1e-4, true, firstStep: false);
                return [p, buf];
            }),
        new("pointwise_relu_addrelu_channel_bias", rng => [R(rng, 2, 5, 4, 3), R(rng, 2, 5, 4, 3), R(rng, 5), R(rng, 2, 5, 4, 3)],
            (be, v, m) =>
            {
                var a = v.In(m[0]); var b = v.In(m[1]); var bias = v.In(m[2]); var d = v.In(m[3]);
                var r = v.Out(a.Shape); be.Map<Relu>(r, a, 0, 0);
                var s = v.Out(a.Shape); be.Map<AddRelu>(s, a, b, Broadcast.Same(a), 0, 0);
                var c = v.Out(a.Shape); be.Map<Add>(c, a, bias, Broadcast.Channels(a), 0, 0);
                var t = v.Out(a.Shape); be.Map<MulAdd>(t, a, b, d, 0, 0);
                var u = v.Out(a.Shape); be.Map<Sigmoid>(u, a, 0, 0);
                return [r, s, c, t, u];
            }),
        new("sum_to_channels_and_all", rng => [R(rng, 3, 6, 5, 4)],
            (be, v, m) =>
            {
                var x = v.In(m[0]);
                var perChannel = v.Out(new Shape(6)); be.SumTo(perChannel, x, Broadcast.Channels(x));
                var all = v.Out(Shape.Scalar); be.SumTo(all, x, Broadcast.All(x));
                return [perChannel, all];
            }, OrderDependent: [0, 1]),
        new("amp_unscale_and_check", rng => [R(rng, 3, 4, 5, 2)],
            (be, v, m) =>
            {
                var g = v.In(m[0]);
                var flag = v.Out(Shape.Scalar, DType.F32); be.Fill(flag, 0);
                be.UnscaleAndCheck(g, flag, 0.25);
                return [g, flag];
            }),
    ];

    private static OpCase Conv(string name, int n, int c, int h, int w, int k, int r, Conv2dParams p, bool bias)
    {
        var (outH, outW) = p.OutputSize(h, w, r, r);
        return new(name, rng => [R(rng, n, c, h, w), R(rng, k, c / p.Groups, r, r), R(rng, k), R(rng, n, k, outH, outW)],
            (be, v, m) =>
            {
                var x = v.In(m[0]); var wt = v.In(m[1]); var dy = v.In(m[3]);
                var y = v.Out(new Shape(n, k, outH, outW));
                be.ConvForward(y, x, wt, bias ? v.In(m[2]) : null, p);
                var dx = v.Out(x.Shape); be.ConvBackwardData(dx, dy, wt, p);
                var dw = v.Out(wt.Shape); be.ConvBackwardFilter(dw, dy, x, p);
                var db = v.Out(new Shape(k)); be.SumTo(db, dy, Broadcast.Channels(dy));
                return [y, dx, dw, db];
            }, OrderDependent: [3]);
    }

    private static OpCase Pool(string name, Pool2dParams p, bool max)
    {
        var outShape = p.OutputShape(new Shape(2, 3, 9, 10), name);
        return new(name, rng => [R(rng, 2, 3, 9, 10), R(rng, outShape.ToArray())],
            (be, v, m) =>
            {
                var x = v.In(m[0]); var dy = v.In(m[1]);
                var y = v.Out(outShape); var dx = v.Out(x.Shape);
                if (!max)
                {
                    be.AvgPoolForward(y, x, p);
                    be.AvgPoolBackward(dx, dy, p);
                    return [y, dx];
                }
                var idx = v.Out(outShape, DType.I32);
                be.MaxPoolForward(y, idx, x, p);
                be.MaxPoolBackward(dx, dy, idx, p);
                return [y, idx, dx];
            });
    }

    /// <summary>Runs a case in a variant; every output as logical-order doubles on the host, with its dtype.</summary>
    public static (double[] Values, DType DType)[] Run(OpCase c, IBackend be, Variant v, int seed = 5)
    {
        using var scope = TensorScope.Begin();
        var master = c.Inputs(new Random(seed));
        return c.Run(be, v, master).Select(t => (t.ToDoubles(), t.DType)).ToArray();
    }
}
