// Option-A shortcut: output layout against a direct index-by-index reference (x[:, :, ::s, ::s]
// between equal zero paddings, as the reference CIFAR code's F.pad), gradients by finite
// differences for stride 1 and 2 with odd sizes, F32 vs F64, and argument validation.
using NUnit.Framework;

// (Not "ResidualEngine.Tests.Ops": that namespace would hide the Ops class from every test.)
namespace ResidualEngine.Tests.OpTests;

public class ShortcutTests
{
    [TestCase(1, 3, 4)]
    [TestCase(2, 3, 7)]
    [TestCase(2, 4, 8)]
    [TestCase(3, 2, 2)]
    public void ForwardPlacesSubsampledChannelsInTheMiddle(int stride, int c, int k)
    {
        using var scope = TensorScope.Begin();
        int n = 2, h = 5, w = 7;
        var x = Tensor.Randn(new Shape(n, c, h, w), new Random(stride + c), DType.F64);
        if ((k - c) % 2 != 0) k++;
        var y = ResidualEngine.Ops.ShortcutA(x, k, stride);
        int p = (h + stride - 1) / stride, q = (w + stride - 1) / stride;
        Assert.That(y.Shape, Is.EqualTo(new Shape(n, k, p, q)));
        var xv = x.ToDoubles();
        var yv = y.ToDoubles();
        int pad = (k - c) / 2;
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < k; ch++)
                for (int a = 0; a < p; a++)
                    for (int b = 0; b < q; b++)
                    {
                        int src = ch - pad;
                        double expected = src >= 0 && src < c ? xv[((i * c + src) * h + a * stride) * w + b * stride] : 0;
                        Assert.That(yv[((i * k + ch) * p + a) * q + b], Is.EqualTo(expected), $"y[{i},{ch},{a},{b}]");
                    }
    }

    [TestCase(1, 3, 5)]
    [TestCase(2, 3, 7)]
    [TestCase(2, 2, 2)]
    public void GradCheck(int stride, int c, int k)
    {
        using var scope = TensorScope.Begin();
        var x = ResidualEngine.Tests.GradCheck.Leaf(new Random(stride * 10 + k), 2, c, 5, 7);
        ResidualEngine.Tests.GradCheck.Run(t => ResidualEngine.Ops.ShortcutA(t[0], k, stride), [x]);
    }

    [TestCase(DType.F32, 64)]
    [TestCase(DType.F32, 67)]
    [TestCase(DType.F64, 35)]
    public void WideStride2RowsMatchTheDefinitionExactly(DType dt, int w)
    {
        // Rows wide enough for the vectorised even-column gather and its inverse (and an odd width's tail).
        using var scope = TensorScope.Begin();
        var rng = new Random(w);
        int n = 2, c = 4, k = 7, h = 5, pad = 2, p = 3, q = (w + 1) / 2;
        var x = Tensor.Randn(new Shape(n, c, h, w), rng, DType.F64).To(dt);
        var dy = Tensor.Randn(new Shape(n, k + 1, p, q), rng, DType.F64).To(dt);
        x.RequiresGrad = true;
        var y = ResidualEngine.Ops.ShortcutA(x, k + 1, 2);
        y.Backward(dy);
        double[] xv = x.ToDoubles(), yv = y.ToDoubles(), dyv = dy.ToDoubles(), dxv = x.Grad!.ToDoubles();
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < k + 1; ch++)
                for (int a = 0; a < p; a++)
                    for (int b = 0; b < q; b++)
                    {
                        int src = ch - pad;
                        double expected = src >= 0 && src < c ? xv[((i * c + src) * h + 2 * a) * w + 2 * b] : 0;
                        Assert.That(yv[((i * (k + 1) + ch) * p + a) * q + b], Is.EqualTo(expected), $"y[{i},{ch},{a},{b}]");
                    }
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < c; ch++)
                for (int r = 0; r < h; r++)
                    for (int col = 0; col < w; col++)
                    {
                        double expected = r % 2 == 0 && col % 2 == 0 ? dyv[((i * (k + 1) + ch + pad) * p + r / 2) * q + col / 2] : 0;
                        Assert.That(dxv[((i * c + ch) * h + r) * w + col], Is.EqualTo(expected), $"dX[{i},{ch},{r},{col}]");
                    }
    }

    [Test]
    public void F32AgreesWithF64()
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(4);
        var xd = Tensor.Randn(new Shape(3, 16, 33, 31), rng, DType.F64);
        var dyd = Tensor.Randn(new Shape(3, 32, 17, 16), rng, DType.F64);
        var r = new List<double[]>();
        foreach (var dt in new[] { DType.F64, DType.F32 })
        {
            var x = xd.To(dt);
            x.RequiresGrad = true;
            var y = ResidualEngine.Ops.ShortcutA(x, 32, 2);
            y.Backward(dyd.To(dt));
            r.Add(y.ToDoubles());
            r.Add(x.Grad!.ToDoubles());
        }
        Close.Assert(r[2], r[0], 1e-6, 1e-6, "y");
        Close.Assert(r[3], r[1], 1e-6, 1e-6, "dX");
    }

    [Test]
    public void InvalidChannelCountsAndStridesAreRejected()
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.Zeros(new Shape(1, 4, 3, 3), DType.F64);
        Assert.That(Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.ShortcutA(x, 2, 2))!.Message, Does.Contain("at least"));
        Assert.That(Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.ShortcutA(x, 7, 2))!.Message, Does.Contain("even"));
        Assert.That(Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.ShortcutA(x, 8, 0))!.Message, Does.Contain("stride"));
        Assert.That(Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.ShortcutA(Tensor.Zeros(new Shape(4, 3, 3), DType.F64), 8, 2))!.Message,
            Does.Contain("rank 4"));
    }
}
