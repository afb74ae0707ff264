// Conv2d: forward against a naive direct convolution written here, gradients by F64 finite
// differences for every option (stride, padding, dilation, groups, depthwise, 1x1, non-square,
// bias, batch > 1), F32 against F64, larger shapes (several column chunks, threads, both
// backward-data paths) against naive backward loops, every GEMM kernel family, and argument
// validation with messages that name the problem.
using NUnit.Framework;
using ResidualEngine.Backends;
using ResidualEngine.Backends.Cpu;
using ResidualEngine.Tests.Backends;

// Not "ResidualEngine.Tests.Ops": that namespace would hide the Ops class.
namespace ResidualEngine.Tests.OpTests;

public class ConvTests
{
    /// <summary>One convolution problem: x (N, C, H, W), w (K, C/groups, R, S).</summary>
    public sealed record Case(string Name, int N, int C, int H, int W, int K, int R, int S, Conv2dParams P, bool Bias)
    {
        public override string ToString() => Name;
        public Shape XShape => new(N, C, H, W);
        public Shape WShape => new(K, C / P.Groups, R, S);
    }

    private static Conv2dParams P(int stride = 1, int pad = 0, int dil = 1, int groups = 1) => Conv2dParams.Of(stride, pad, dil, groups);

    public static readonly Case[] Small =
    [
        new("plain 3x3", 2, 3, 5, 5, 4, 3, 3, P(), true),
        new("3x3 padding 1", 1, 2, 6, 5, 3, 3, 3, P(pad: 1), false),
        new("3x3 stride 2 padding 1", 2, 3, 7, 8, 4, 3, 3, P(stride: 2, pad: 1), true),
        new("3x3 dilation 2 padding 2", 1, 2, 8, 7, 3, 3, 3, P(pad: 2, dil: 2), false),
        new("groups 2", 2, 4, 5, 6, 6, 3, 3, P(pad: 1, groups: 2), true),
        new("depthwise", 2, 4, 6, 5, 4, 3, 3, P(pad: 1, groups: 4), false),
        new("depthwise multiplier 2 stride 2", 1, 3, 7, 6, 6, 3, 3, P(stride: 2, pad: 1, groups: 3), true),
        new("1x1", 2, 5, 4, 3, 3, 1, 1, P(), true),
        new("1x1 stride 2", 2, 4, 5, 6, 3, 1, 1, P(stride: 2), false),
        new("1x1 padding 1", 1, 3, 3, 4, 2, 1, 1, P(pad: 1), false),
        new("3x3 padding 3", 1, 2, 4, 4, 2, 3, 3, P(pad: 3), true),
        new("non-square 2x3 kernel, mixed stride/padding/dilation", 2, 3, 7, 9, 4, 2, 3,
            new Conv2dParams(StrideH: 2, StrideW: 1, PadH: 1, PadW: 0, DilationH: 1, DilationW: 2), true),
        new("7x7 stride 2 padding 3", 1, 2, 9, 11, 3, 7, 7, P(stride: 2, pad: 3), false),
        new("stride 3 dilation 2 groups 2", 2, 4, 9, 8, 4, 3, 2, P(stride: 3, pad: 1, dil: 2, groups: 2), true),
    ];

    /// <summary>
    /// The same problems with the input widened until the output has at least 16 columns: the CPU
    /// backend convolves those through padded "shift" planes rather than packed im2col slivers,
    /// so every option is checked on both paths.
    /// </summary>
    public static readonly Case[] Wide = Array.ConvertAll(Small, t =>
    {
        int w = t.W;
        while (t.P.OutputSize(t.H, w, t.R, t.S).Q < 16) w++;
        return t with { Name = t.Name + ", wide", W = w };
    });

    public static IEnumerable<Case> All => Small.Concat(Wide);

    // Shapes big enough for several column chunks, multi-threaded tasks, long dW chunks both in
    // place and gathered, and the col2im path at scale. Which CPU path a shape takes: outputs at
    // least 16 wide use shift planes; narrower ones packed im2col, with the filter gradient by dot
    // kernels when the batch has at least 512 output pixels and by one GEMM below that.
    public static readonly Case[] Large =
    [
        new("3x3 over 23x29 (shift planes, several column chunks)", 3, 5, 23, 29, 7, 3, 3, P(pad: 1), true),
        new("3x3 stride 2 groups 2 over small images", 4, 6, 9, 11, 10, 3, 3, P(stride: 2, pad: 1, groups: 2), true),
        new("1x1 over 32x32 (shift planes without padding)", 2, 4, 32, 32, 5, 1, 1, P(), false),
        new("3x3 stride 2 over 40x36 (phase planes, col2im backward data)", 2, 9, 40, 36, 17, 3, 3, P(stride: 2, pad: 1), false),
        new("wide channels, several k blocks", 1, 30, 5, 6, 100, 3, 3, P(pad: 1), true),
        new("narrow images, many of them (packed forward, dot-kernel dW)", 6, 5, 12, 12, 7, 3, 3, P(pad: 1), true),
        new("narrow images, stride 2 groups 2 (packed forward, dot-kernel dW)", 4, 4, 24, 22, 6, 3, 3, P(stride: 2, pad: 1, groups: 2), false),
        new("tall narrow images (dW chunks inside each image, dY read in place)", 2, 3, 120, 10, 4, 3, 3, P(pad: 1), true),
        new("more images than shift dW blocks (uneven blocks of images, partial sums)", 11, 3, 6, 18, 4, 3, 3, P(pad: 1), false),
        new("narrow padded images, dilation 2 groups 2 (padded planes)", 3, 4, 9, 9, 6, 3, 3, P(pad: 2, dil: 2, groups: 2), true),
    ];

    // ---------------- naive references ----------------

    private static (int P, int Q) Out(Case t) => t.P.OutputSize(t.H, t.W, t.R, t.S);

    /// <summary>Calls f(n, k, p, q, c (global), r, s, ih, iw) for every in-bounds tap of every output.</summary>
    private static void ForEachTap(Case t, Action<int, int, int, int, int, int, int, int, int> f)
    {
        var (pp, qq) = Out(t);
        int cg = t.C / t.P.Groups, kg = t.K / t.P.Groups;
        for (int n = 0; n < t.N; n++)
            for (int k = 0; k < t.K; k++)
                for (int p = 0; p < pp; p++)
                    for (int q = 0; q < qq; q++)
                        for (int c = 0; c < cg; c++)
                            for (int r = 0; r < t.R; r++)
                                for (int s = 0; s < t.S; s++)
                                {
                                    int ih = p * t.P.StrideH - t.P.PadH + r * t.P.DilationH;
                                    int iw = q * t.P.StrideW - t.P.PadW + s * t.P.DilationW;
                                    if (ih < 0 || ih >= t.H || iw < 0 || iw >= t.W) continue;
                                    f(n, k, p, q, k / kg * cg + c, r, s, ih, iw);
                                }
    }

    private static double[] NaiveForward(Case t, double[] x, double[] w, double[]? b)
    {
        var (pp, qq) = Out(t);
        int cg = t.C / t.P.Groups;
        var y = new double[t.N * t.K * pp * qq];
        if (b is not null)
            for (int i = 0; i < y.Length; i++) y[i] = b[i / (pp * qq) % t.K];
        ForEachTap(t, (n, k, p, q, c, r, s, ih, iw) =>
            y[((n * t.K + k) * pp + p) * qq + q] += x[((n * t.C + c) * t.H + ih) * t.W + iw] * w[((k * cg + c % cg) * t.R + r) * t.S + s]);
        return y;
    }

    private static (double[] dX, double[] dW, double[] dB) NaiveBackward(Case t, double[] x, double[] w, double[] dy)
    {
        var (pp, qq) = Out(t);
        int cg = t.C / t.P.Groups;
        var dx = new double[x.Length];
        var dw = new double[w.Length];
        var db = new double[t.K];
        for (int i = 0; i < dy.Length; i++) db[i / (pp * qq) % t.K] += dy[i];
        ForEachTap(t, (n, k, p, q, c, r, s, ih, iw) =>
        {
            double g = dy[((n * t.K + k) * pp + p) * qq + q];
            int xi = ((n * t.C + c) * t.H + ih) * t.W + iw, wi = ((k * cg + c % cg) * t.R + r) * t.S + s;
            dx[xi] += g * w[wi];
            dw[wi] += g * x[xi];
        });
        return (dx, dw, db);
    }

    private static (Tensor X, Tensor W, Tensor? B) Inputs(Case t, DType dt, int seed)
    {
        var rng = new Random(seed);
        var x = Tensor.Randn(t.XShape, rng, dt);
        var w = Tensor.Randn(t.WShape, rng, dt, std: 0.5);
        var b = t.Bias ? Tensor.Randn(new Shape(t.K), rng, dt) : null;
        return (x, w, b);
    }

    // ---------------- forward ----------------

    [Test]
    public void ForwardMatchesDirectConvolution([ValueSource(nameof(All))] Case t, [Values(DType.F32, DType.F64)] DType dt)
    {
        foreach (var isa in GemmTests.Isas())
            GemmTests.WithIsa(isa, () =>
            {
                using var scope = TensorScope.Begin();
                var (x, w, b) = Inputs(t, dt, 11);
                var y = Ops.Conv2d(x, w, b, t.P);
                var (pp, qq) = Out(t);
                Assert.That(y.Shape, Is.EqualTo(new Shape(t.N, t.K, pp, qq)));
                var expected = NaiveForward(t, x.ToDoubles(), w.ToDoubles(), b?.ToDoubles());
                Close.Assert(y.ToDoubles(), expected, dt == DType.F32 ? 1e-5 : 1e-12, 1e-5, $"{t} {dt} {isa}");
            });
    }

    // ---------------- gradients ----------------

    [Test]
    public void GradientsMatchFiniteDifferences([ValueSource(nameof(All))] Case t)
    {
        using var scope = TensorScope.Begin();
        var (x, w, b) = Inputs(t, DType.F64, 21);
        x.RequiresGrad = true;
        w.RequiresGrad = true;
        if (b is not null) b.RequiresGrad = true;
        var inputs = b is null ? new[] { x, w } : new[] { x, w, b };
        GradCheck.Run(v => Ops.Conv2d(v[0], v[1], v.Length > 2 ? v[2] : null, t.P), inputs);
    }

    [Test]
    public void OnlyRequestedGradientsAreComputed()
    {
        using var scope = TensorScope.Begin();
        var t = Small[0];
        var (x, w, b) = Inputs(t, DType.F64, 5);
        w.RequiresGrad = true; // x and b are constants
        Ops.Sum(Ops.Conv2d(x, w, b, t.P)).Backward();
        Assert.That(w.Grad, Is.Not.Null);
        Assert.That(x.Grad, Is.Null);
        Assert.That(b!.Grad, Is.Null);
    }

    [Test]
    public void F32AgreesWithF64([ValueSource(nameof(All))] Case t)
    {
        using var scope = TensorScope.Begin();
        var results = new Dictionary<DType, double[][]>();
        foreach (var dt in new[] { DType.F64, DType.F32 })
        {
            var (x, w, b) = Inputs(t, dt, 31); // same seed: the F32 inputs are the F64 ones rounded
            x.RequiresGrad = true;
            w.RequiresGrad = true;
            if (b is not null) b.RequiresGrad = true;
            var y = Ops.Conv2d(x, w, b, t.P);
            var r = Tensor.Randn(y.Shape, new Random(7), dt);
            Ops.Sum(Ops.Mul(y, r)).Backward();
            results[dt] = [y.ToDoubles(), x.Grad!.ToDoubles(), w.Grad!.ToDoubles(), b?.Grad!.ToDoubles() ?? []];
        }
        string[] what = ["y", "dX", "dW", "dB"];
        for (int i = 0; i < what.Length; i++)
            Close.Assert(results[DType.F32][i], results[DType.F64][i], 1e-4, 1e-3, $"{t}: F32 vs F64 {what[i]}");
    }

    [Test]
    public void LargerShapesMatchNaiveForwardAndBackward([ValueSource(nameof(Large))] Case t)
    {
        foreach (var isa in GemmTests.Isas())
            foreach (var dt in new[] { DType.F64, DType.F32 })
                GemmTests.WithIsa(isa, () =>
                {
                    using var scope = TensorScope.Begin();
                    var (x, w, b) = Inputs(t, dt, 41);
                    x.RequiresGrad = true;
                    w.RequiresGrad = true;
                    if (b is not null) b.RequiresGrad = true;
                    var y = Ops.Conv2d(x, w, b, t.P);
                    var dy = Tensor.Randn(y.Shape, new Random(43), dt);
                    y.Backward(dy);
                    double[] xv = x.ToDoubles(), wv = w.ToDoubles(), dyv = dy.ToDoubles();
                    var (dx, dw, db) = NaiveBackward(t, xv, wv, dyv);
                    double atol = dt == DType.F32 ? 2e-4 : 1e-10, rtol = dt == DType.F32 ? 1e-4 : 1e-10;
                    string at = $"{t} {dt} {isa}";
                    Close.Assert(y.ToDoubles(), NaiveForward(t, xv, wv, b?.ToDoubles()), atol, rtol, $"{at} y");
                    Close.Assert(x.Grad!.ToDoubles(), dx, atol, rtol, $"{at} dX");
                    Close.Assert(w.Grad!.ToDoubles(), dw, atol * 10, rtol, $"{at} dW");
                    if (b is not null) Close.Assert(b.Grad!.ToDoubles(), db, atol * 10, rtol, $"{at} dB");
                });
    }

    [Test]
    public void StaleScratchMemoryNeverReachesResults()
    {
        // Scratch buffers are pooled and reused: poison them with NaN so that a kernel reading
        // memory it did not write (padding, unused phases, tile tails) fails here, every time.
        CpuScratch.PoisonNew = true;
        try
        {
            foreach (var t in Large.Concat(Wide).Where(c => c.P.StrideH > 1 || c.P.Groups > 1 || c.R > 1))
            {
                CpuScratch.PoisonPooled();
                using var scope = TensorScope.Begin();
                var (x, w, b) = Inputs(t, DType.F64, 51);
                x.RequiresGrad = true;
                w.RequiresGrad = true;
                var y = Ops.Conv2d(x, w, b, t.P);
                var dy = Tensor.Randn(y.Shape, new Random(52), DType.F64);
                CpuScratch.PoisonPooled();
                y.Backward(dy);
                double[] xv = x.ToDoubles(), wv = w.ToDoubles();
                var (dx, dw, _) = NaiveBackward(t, xv, wv, dy.ToDoubles());
                Close.Assert(y.ToDoubles(), NaiveForward(t, xv, wv, b?.ToDoubles()), 1e-10, 1e-10, $"{t} y");
                Close.Assert(x.Grad!.ToDoubles(), dx, 1e-10, 1e-10, $"{t} dX");
                Close.Assert(w.Grad!.ToDoubles(), dw, 1e-9, 1e-10, $"{t} dW");
            }
        }
        finally { CpuScratch.PoisonNew = false; }
    }

    // ---------------- argument validation ----------------

    private static ArgumentException Rejects(Func<Tensor> f, params string[] fragments)
    {
        var e = Assert.Throws<ArgumentException>(() => f())!;
        foreach (var s in fragments) Assert.That(e.Message, Does.Contain(s));
        Assert.That(e.Message, Does.StartWith("Conv2d"));
        return e;
    }

    [Test]
    public void InvalidArgumentsNameTheProblem()
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.Zeros(new Shape(1, 4, 5, 5));
        var w = Tensor.Zeros(new Shape(6, 4, 3, 3));
        Rejects(() => Ops.Conv2d(Tensor.Zeros(new Shape(4, 5, 5)), w), "x must have rank 4");
        Rejects(() => Ops.Conv2d(x, Tensor.Zeros(new Shape(6, 4, 3))), "weight must have rank 4");
        Rejects(() => Ops.Conv2d(x, Tensor.Zeros(new Shape(6, 3, 3, 3))), "weight has 3 input channels per group", "input has 4 channels");
        Rejects(() => Ops.Conv2d(x, Tensor.Zeros(new Shape(6, 1, 3, 3)), groups: 3), "input channels (4) must be divisible by groups (3)");
        Rejects(() => Ops.Conv2d(x, Tensor.Zeros(new Shape(5, 2, 3, 3)), groups: 2), "output channels (5) must be divisible by groups (2)");
        Rejects(() => Ops.Conv2d(x, w, stride: 0), "stride", "positive", "0");
        Rejects(() => Ops.Conv2d(x, w, stride: -2), "stride", "-2");
        Rejects(() => Ops.Conv2d(x, w, dilation: 0), "dilation");
        Rejects(() => Ops.Conv2d(x, w, padding: -1), "padding", "negative");
        Rejects(() => Ops.Conv2d(x, w, groups: 0), "groups");
        Rejects(() => Ops.Conv2d(Tensor.Zeros(new Shape(1, 1, 3, 3)), Tensor.Zeros(new Shape(1, 1, 7, 7))),
            "kernel 7x7 (dilation 1) is larger than the padded input 3x3");
        Rejects(() => Ops.Conv2d(x, w, dilation: 3), "kernel 3x3 (dilation 3) is larger than the padded input 5x5");
        Rejects(() => Ops.Conv2d(x, w, Tensor.Zeros(new Shape(5))), "bias must have shape (6)", "got (5,)");
        Rejects(() => Ops.Conv2d(x, Tensor.Zeros(new Shape(6, 4, 3, 3), DType.F64)), "x is F32", "weight is F64");
        Rejects(() => Ops.Conv2d(x, w, Tensor.Zeros(new Shape(6), DType.F64)), "bias is F64");
        // Padding makes a large kernel legal.
        Assert.That(Ops.Conv2d(Tensor.Zeros(new Shape(1, 1, 3, 3)), Tensor.Zeros(new Shape(1, 1, 7, 7)), padding: 2).Shape,
            Is.EqualTo(new Shape(1, 1, 1, 1)));
    }

    [Test]
    public void DeviceMismatchIsRejected()
    {
        FakeDevice.Run(dev =>
        {
            using var scope = TensorScope.Begin();
            var x = Tensor.Zeros(new Shape(1, 2, 4, 4));
            var w = Tensor.Empty(new Shape(3, 2, 3, 3), DType.F32, dev);
            Rejects(() => Ops.Conv2d(x, w), "x is on cpu", $"weight is on {dev}");
            var wc = Tensor.Zeros(new Shape(3, 2, 3, 3));
            var b = Tensor.Empty(new Shape(3), DType.F32, dev);
            Rejects(() => Ops.Conv2d(x, wc, b), $"bias is on {dev}");
        });
    }

    [Test]
    public void MixedFormatsNameBothTensorsAndIntegerTypesAreRejected()
    {
        using var scope = TensorScope.Begin();
        var xl = Tensor.Zeros(new Shape(1, 2, 4, 4)).To(MemoryFormat.ChannelsLast);
        var w = Tensor.Zeros(new Shape(3, 2, 3, 3));
        var e = Assert.Throws<ArgumentException>(() => Ops.Conv2d(xl, w));
        Assert.That(e!.Message, Does.Contain("x tensor").And.Contain("weight tensor").And.Contain("channels-last").And.Contain("NCHW"));
        Assert.Throws<ArgumentException>(() => Ops.Conv2d(Tensor.Zeros(new Shape(1, 2, 4, 4), DType.I32), w));
    }
}
