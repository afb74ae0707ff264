// CPU against CUDA for every backend op (Backends/OpVariants.cs) in BF16, F16 and channels-last, and
// channels-last against NCHW on CUDA in F64. Both backends compute 16-bit ops in F32 and round once,
// so they differ only where F32 sums in different orders round to different 16-bit neighbours:
// within two units in the last place of the 16-bit type (rtol 2^-7 for BF16's 8-bit significand,
// 2^-9 for F16's 11-bit one) plus a small absolute term for values that cancel to near zero.
// Also: 16-bit casts are bit-identical on both backends (round to nearest even, ties, subnormals,
// overflow, NaN), layout conversion for every element size, and the loss scaler's found-inf flag.
using NUnit.Framework;

namespace ResidualEngine.Tests.Backends.Cuda;

[Category("Gpu")]
public class CudaMixedParityTests : GpuTestBase
{
    private static readonly (DType DType, MemoryFormat Format)[] Variants =
    [
        (DType.BF16, MemoryFormat.Contiguous), (DType.F16, MemoryFormat.Contiguous),
        (DType.F32, MemoryFormat.ChannelsLast), (DType.BF16, MemoryFormat.ChannelsLast),
    ];

    private static IEnumerable<TestCaseData> Cases() =>
        from c in OpVariants.All
        from v in Variants
        where c.HasFormat || v.Format == MemoryFormat.Contiguous
        select new TestCaseData(c, v.DType, v.Format).SetArgDisplayNames(c.Name, v.DType.ToString(), v.Format == MemoryFormat.ChannelsLast ? "NHWC" : "NCHW");

    [TestCaseSource(nameof(Cases))]
    public void MatchesCpu(OpCase c, DType dt, MemoryFormat format)
    {
        var cpu = OpVariants.Run(c, Cpu, new Variant(dt, format, Device.Cpu));
        var gpu = OpVariants.Run(c, Gpu, new Variant(dt, format, Dev));
        var (atol, rtol) = dt switch { DType.BF16 => (1e-2, 1.0 / 128), DType.F16 => (2e-3, 1.0 / 512), _ => (Atol, Rtol) };
        for (int i = 0; i < cpu.Length; i++)
        {
            Assert.That(gpu[i].DType, Is.EqualTo(cpu[i].DType), $"{c.Name} output {i} dtype");
            Assert.That(gpu[i].Values, Has.None.NaN, $"{c.Name} output {i}: NaN left in the GPU output");
            Close.Assert(gpu[i].Values, cpu[i].Values, atol, rtol, $"{c.Name} output {i} ({dt}, {format})");
        }
    }

    private static IEnumerable<TestCaseData> FormatCases() =>
        OpVariants.All.Where(c => c.HasFormat).Select(c => new TestCaseData(c).SetArgDisplayNames(c.Name));

    [TestCaseSource(nameof(FormatCases))]
    public void ChannelsLastEqualsNchwInF64(OpCase c)
    {
        var nhwc = OpVariants.Run(c, Gpu, new Variant(DType.F64, MemoryFormat.ChannelsLast, Dev));
        var nchw = OpVariants.Run(c, Gpu, new Variant(DType.F64, MemoryFormat.Contiguous, Dev));
        for (int i = 0; i < nhwc.Length; i++)
        {
            if (c.OrderDependent?.Contains(i) == true) Close.Assert(nhwc[i].Values, nchw[i].Values, 1e-12, 1e-12, $"{c.Name} output {i} (a sum in layout order)");
            else Assert.That(nhwc[i].Values, Is.EqualTo(nchw[i].Values), $"{c.Name} output {i}: NHWC vs NCHW on CUDA");
        }
    }

    /// <summary>Values where rounding decides: halfway cases both ways, subnormals, the largest finite values and beyond, signed zeros, infinities, NaN.</summary>
    private static float[] Tricky()
    {
        var v = new List<float> { 0f, -0f, 1f, -1f, 65504f, 65519f, 65520f, 1e6f, -1e6f, 6.1e-5f, 5.96e-8f, 2.98e-8f, 1e-9f, 3e-39f,
            float.MaxValue, float.Epsilon, float.PositiveInfinity, float.NegativeInfinity, float.NaN, -float.NaN };
        // Exact halfway points between neighbouring bfloat16 and half values, both parities.
        for (uint b = 0x3F80; b < 0x3F90; b++) v.Add(BitConverter.UInt32BitsToSingle((b << 16) | 0x8000));
        for (int h = 1024; h < 1040; h++) v.Add(((float)BitConverter.UInt16BitsToHalf((ushort)(0x3C00 + h - 1024)) + (float)BitConverter.UInt16BitsToHalf((ushort)(0x3C01 + h - 1024))) / 2);
        var rng = new Random(9);
        for (int i = 0; i < 4000; i++) v.Add(BitConverter.Int32BitsToSingle(rng.Next()) * (rng.Next(2) == 0 ? 1 : -1));
        return v.ToArray();
    }

    [TestCase(DType.BF16)]
    [TestCase(DType.F16)]
    public void CastsAreBitIdentical(DType dt)
    {
        var f = Tricky();
        var src = Tensor.FromArray(f, new Shape(f.Length));
        var c = CpuOut(src.Shape, dt);
        Cpu.Cast(c, src);
        var g = GpuOut(src.Shape, dt);
        Gpu.Cast(g, G(src));
        using var back = g.To(Device.Cpu);
        Assert.That(Bits(back), Is.EqualTo(Bits(c)), $"F32 -> {dt}: GPU and CPU bits");
        // And from F64 (through float on both sides).
        var d = Tensor.FromArray(f.Select(x => (double)x * (1 + 1e-12)).ToArray(), new Shape(f.Length));
        var c2 = CpuOut(d.Shape, dt);
        Cpu.Cast(c2, d);
        var g2 = GpuOut(d.Shape, dt);
        Gpu.Cast(g2, G(d));
        using var back2 = g2.To(Device.Cpu);
        Assert.That(Bits(back2), Is.EqualTo(Bits(c2)), $"F64 -> {dt}: GPU and CPU bits");
        // Widening is exact: 16-bit -> F32 -> 16-bit gives the same bits on the GPU.
        var w = GpuOut(src.Shape, DType.F32);
        Gpu.Cast(w, g);
        var again = GpuOut(src.Shape, dt);
        Gpu.Cast(again, w);
        using var back3 = again.To(Device.Cpu);
        Assert.That(Bits(back3), Is.EqualTo(Bits(c)), $"{dt} -> F32 -> {dt} round trip");
    }

    /// <summary>The 16-bit patterns; every F16 NaN counts as one (PTX's cvt.rn.f16.f32 returns the canonical NaN,
    /// System.Half keeps payload bits: both are NaN, which is all IEEE promises). BF16 NaNs are compared bit for bit.</summary>
    private static ushort[] Bits(Tensor t)
    {
        var b = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(t.HostSpan()).ToArray();
        if (t.DType == DType.F16)
            for (int i = 0; i < b.Length; i++)
                if ((b[i] & 0x7C00) == 0x7C00 && (b[i] & 0x03FF) != 0) b[i] = 0x7FFF;
        return b;
    }

    [TestCase(DType.U8)]
    [TestCase(DType.BF16)]
    [TestCase(DType.F32)]
    [TestCase(DType.F64)]
    public void LayoutConversionMatchesCpu(DType dt)
    {
        var v = Enumerable.Range(0, 2 * 5 * 7 * 3).Select(i => (double)(i % 200)).ToArray();
        var x = Tensor.FromDoubles(v, new Shape(2, 5, 7, 3), dt);
        using var gpuNhwc = G(x).To(MemoryFormat.ChannelsLast);
        using var cpuNhwc = x.To(MemoryFormat.ChannelsLast);
        using var a = gpuNhwc.To(Device.Cpu);
        Assert.That(a.HostSpan().ToArray(), Is.EqualTo(cpuNhwc.HostSpan().ToArray()), "NCHW -> NHWC bytes");
        using var backToNchw = gpuNhwc.To(MemoryFormat.Contiguous);
        Exact(backToNchw, x, "NHWC -> NCHW");
        Assert.That(a.ToDoubles(), Is.EqualTo(v), "ToDoubles reads a channels-last tensor in logical order");
    }

    [TestCase(DType.F32)]
    [TestCase(DType.BF16)]
    [TestCase(DType.F16)]
    public void FoundInfFlagIsRaisedAndNeverCleared(DType dt)
    {
        var v = Enumerable.Range(0, 3000).Select(i => (i % 17) - 8.0).ToArray();
        var finite = G(Tensor.FromDoubles(v, new Shape(v.Length), dt));
        v[2345] = double.PositiveInfinity;
        var withInf = G(Tensor.FromDoubles(v, new Shape(v.Length), dt));
        var flag = GpuOut(Shape.Scalar, DType.F32);
        Gpu.Fill(flag, 0);
        Gpu.UnscaleAndCheck(finite, flag, 0.5);
        Assert.That(flag.Item(), Is.Zero, "finite gradients leave the flag down");
        Assert.That(finite.ToDoubles()[3], Is.EqualTo(-2.5), "and are unscaled");
        Gpu.UnscaleAndCheck(withInf, flag, 0.5);
        Assert.That(flag.Item(), Is.EqualTo(1), "an infinity raises it");
        Gpu.UnscaleAndCheck(finite, flag, 1);
        Assert.That(flag.Item(), Is.EqualTo(1), "a later finite gradient does not lower it");
    }
}
