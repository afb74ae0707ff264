// The CPU backend's fused forward convolution (IBackend.ConvForwardFused): bias, residual and
// ReLU are applied by the convolution's epilogue (CpuConvEpilogue.cs) while each output tile is
// in cache, and weights prepared once (CpuPreparedConvWeights: packed in the GEMM's panel layout)
// replace the per-call packing. Eval-mode layers (Nn.Conv2d) use both.
using System.Numerics;

namespace ResidualEngine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void ConvForwardFused(Tensor y, Tensor x, Tensor w, Tensor? bias, Tensor? residual, bool relu, Conv2dParams p, PreparedConvWeights? prepared)
    {
        const string op = "ConvForwardFused";
        CheckConvOperands(op, y, x, w, bias);
        if (residual is not null && (residual.Shape != y.Shape || residual.DType != y.DType || residual.Format != MemoryFormat.Contiguous))
            throw new ArgumentException($"{op}: residual {residual.Describe()} does not match the output {y.Describe()}");
        CpuPreparedConvWeights? packed = null;
        if (prepared is not null)
        {
            packed = prepared as CpuPreparedConvWeights
                ?? throw new ArgumentException($"{op}: prepared weights of another backend ({prepared.GetType().Name})");
            if (packed.IsDisposed) throw new ObjectDisposedException(nameof(PreparedConvWeights), $"{op}: the prepared weights were disposed");
            if (!packed.Matches(w, p) || !packed.IsCurrent)
                throw new ArgumentException($"{op}: prepared weights for {packed.WeightShape} {packed.DType} do not fit weights {w.Describe()} (groups {p.Groups}) on the current kernels");
        }
        var g = ConvGeom.Of(y, x, w, p);
        // The data of w is read only when nothing was prepared (its address bumps its version).
        if (x.DType == DType.F32)
        {
            float* yp = (float*)y.Pointer;
            var epi = new ConvEpilogue<float>(yp, bias is null ? null : (float*)bias.Pointer, residual is null ? null : (float*)residual.Pointer, relu);
            CpuConv.Forward(yp, (float*)x.Pointer, packed is null ? (float*)w.Pointer : null, g, Threads, epi, false, (float*)(packed?.Pointer ?? 0));
        }
        else
        {
            double* yp = (double*)y.Pointer;
            var epi = new ConvEpilogue<double>(yp, bias is null ? null : (double*)bias.Pointer, residual is null ? null : (double*)residual.Pointer, relu);
            CpuConv.Forward(yp, (double*)x.Pointer, packed is null ? (double*)w.Pointer : null, g, Threads, epi, false, (double*)(packed?.Pointer ?? 0));
        }
    }

    public PreparedConvWeights? PrepareConvWeights(Tensor w, Conv2dParams p)
    {
        RequireFloat(w, "PrepareConvWeights");
        if (w.Rank != 4) throw new ArgumentException($"PrepareConvWeights: expected 4-d weights, got {w.Describe()}");
        return w.DType == DType.F32 ? CpuPreparedConvWeights.Pack<float>(w, p) : CpuPreparedConvWeights.Pack<double>(w, p);
    }
}

/// <summary>Convolution weights packed once in the CPU GEMM's panel layout for the kernels in use.</summary>
internal sealed unsafe class CpuPreparedConvWeights : PreparedConvWeights
{
    private nint _ptr;
    private readonly long _size;

    private CpuPreparedConvWeights(Tensor w, Conv2dParams p, long bytes) : base(w.Shape, w.DType, w.Device, p)
    {
        Isa = CpuGemm.Isa;
        (_ptr, _size) = HostAllocator.Rent(Math.Max(64, bytes));
    }

    /// <summary>The kernel family the panels were packed for (their height MR depends on it).</summary>
    public GemmIsa Isa { get; }

    /// <summary>False once the kernel family changed (tests switch it): the panels no longer fit.</summary>
    public override bool IsCurrent => Isa == CpuGemm.Isa;

    public nint Pointer => _ptr != 0 ? _ptr : throw new ObjectDisposedException(nameof(CpuPreparedConvWeights));

    public static CpuPreparedConvWeights Pack<T>(Tensor w, Conv2dParams p) where T : unmanaged, INumber<T>
    {
        int k = w.Shape[0], cg = w.Shape[1], r = w.Shape[2], s = w.Shape[3];
        if (p.Groups < 1 || k % p.Groups != 0)
            throw new ArgumentException($"PrepareConvWeights: {k} output channels are not divisible by groups = {p.Groups}");
        // Only the channel counts and taps matter for the packing; the image size is a placeholder.
        var g = new ConvGeom(1, cg * p.Groups, r, s, k, r, s, 1, 1, 1, 1, 0, 0, 1, 1, p.Groups);
        var isa = CpuGemm.Isa;
        long count = (long)CpuGemm.PrepackSize<T>(isa, g.Kg) * g.Taps * g.Groups;
        var prepared = new CpuPreparedConvWeights(w, p, count * sizeof(T));
        CpuConv.PackWeightsFor(isa, (T*)w.Pointer, g, (T*)prepared._ptr, CpuBackend.Threads);
        return prepared;
    }

    protected override void Free()
    {
        HostAllocator.Return(_ptr, _size);
        _ptr = 0;
    }

    ~CpuPreparedConvWeights()
    {
        if (_ptr == 0) return;
        HostAllocator.ReleaseDirect(_ptr, _size);
        _ptr = 0;
    }
}
