// 16-bit and channels-last tensors on the CPU backend. The heavy kernels (convolution, batch norm,
// GEMM, pooling, loss, shortcut, SGD) are written for F32/F64 NCHW; for any other operand they run
// on canonical temporaries: 16-bit becomes F32 (exact), channels-last becomes NCHW, the kernel
// runs, and what it wrote goes back (rounded to nearest even into 16-bit, transposed into NHWC).
// So arithmetic is F32 with F32 accumulators, as on the GPU (cuDNN/cuBLAS with F32 compute).
// Correct first: a native 16-bit/NHWC CPU path is issue 16's. Also here: casts between float
// types (bit-identical to the GPU's, via Float16) and the NCHW <-> NHWC layout conversion.
using System.Buffers;

namespace ResidualEngine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    /// <summary>True when <paramref name="t"/> is not in a dtype (and, with <paramref name="layout"/>, a layout) the kernels take directly.</summary>
    private static bool NeedsCanonical(Tensor? t, bool layout) =>
        t is not null && (t.DType.Is16Bit() || (layout && t.Format != MemoryFormat.Contiguous));

    /// <summary>
    /// When any of <paramref name="ts"/> needs it, runs <paramref name="kernel"/> on canonical copies and returns true
    /// (the caller returns); else false. <paramref name="roles"/> has one letter per tensor: i (read), o (written), b (both).
    /// Tensors already canonical are passed through, so in-place updates of F32 statistics land directly.
    /// </summary>
    private static bool RunCanonical(string roles, bool layout, Action<Tensor?[]> kernel, params Tensor?[] ts)
    {
        bool any = false;
        foreach (var t in ts) any |= NeedsCanonical(t, layout);
        if (!any) return false;
        var c = new Tensor?[ts.Length];
        try
        {
            for (int i = 0; i < ts.Length; i++)
            {
                var t = ts[i];
                if (t is null || !NeedsCanonical(t, layout)) { c[i] = t; continue; }
                var dt = t.DType.Is16Bit() ? DType.F32 : t.DType;
                c[i] = TensorScope.Detach(Tensor.Empty(t.Shape, dt, Device.Cpu, layout ? MemoryFormat.Contiguous : t.Format));
                if (roles[i] != 'o') ConvertInto(c[i]!, t);
            }
            kernel(c);
            for (int i = 0; i < ts.Length; i++)
                if (roles[i] != 'i' && ts[i] is { } t && !ReferenceEquals(c[i], t)) ConvertInto(t, c[i]!);
        }
        finally
        {
            for (int i = 0; i < ts.Length; i++)
                if (!ReferenceEquals(c[i], ts[i])) c[i]?.Dispose();
        }
        return true;
    }

    /// <summary>dst = src converted to dst's dtype and memory format (same shape).</summary>
    internal static void ConvertInto(Tensor dst, Tensor src)
    {
        if (dst.Format == src.Format)
        {
            if (dst.DType == src.DType) Instance.Copy(dst, src); else Instance.Cast(dst, src);
            return;
        }
        if (dst.DType == src.DType) { Instance.ConvertLayout(dst, src); return; }
        using var tmp = TensorScope.Detach(Tensor.Empty(src.Shape, src.DType, Device.Cpu, dst.Format));
        Instance.ConvertLayout(tmp, src);
        Instance.Cast(dst, tmp);
    }

    /// <summary>dst = src in dst's memory format (NCHW &lt;-&gt; NHWC), same shape and dtype.</summary>
    public void ConvertLayout(Tensor dst, Tensor src)
    {
        if (dst.Shape != src.Shape || dst.DType != src.DType)
            throw new ArgumentException($"ConvertLayout: {src.Describe()} and {dst.Describe()} differ in shape or dtype");
        if (dst.Format == src.Format) { Copy(dst, src); return; }
        int n = src.Shape[0], c = src.Shape[1], hw = checked(src.Shape[2] * src.Shape[3]);
        // NCHW -> NHWC transposes each image's (C, HW) matrix; NHWC -> NCHW its (HW, C) matrix.
        var (rows, cols) = src.Format == MemoryFormat.Contiguous ? (c, hw) : (hw, c);
        switch (src.DType.Size())
        {
            case 1: Transpose<byte>(dst.Pointer, src.Pointer, n, rows, cols); break;
            case 2: Transpose<ushort>(dst.Pointer, src.Pointer, n, rows, cols); break;
            case 4: Transpose<uint>(dst.Pointer, src.Pointer, n, rows, cols); break;
            default: Transpose<ulong>(dst.Pointer, src.Pointer, n, rows, cols); break;
        }
    }

    /// <summary>For each of n matrices (rows, cols): dst = src^T, in 32 x 32 tiles.</summary>
    private static void Transpose<T>(nint dst, nint src, int n, int rows, int cols) where T : unmanaged
    {
        const int Tile = 32;
        int tilesR = (rows + Tile - 1) / Tile;
        long per = (long)rows * cols;
        CpuVec.For(checked(n * tilesR), (long)Tile * cols, job =>
        {
            int img = job / tilesR, r0 = job % tilesR * Tile, r1 = Math.Min(rows, r0 + Tile);
            T* s = (T*)src + img * per, d = (T*)dst + img * per;
            for (int c0 = 0; c0 < cols; c0 += Tile)
            {
                int c1 = Math.Min(cols, c0 + Tile);
                for (int r = r0; r < r1; r++)
                    for (int col = c0; col < c1; col++)
                        d[(long)col * rows + r] = s[(long)r * cols + col];
            }
        });
    }

    /// <summary>Casts among F32, BF16 and F16 through float chunks (bit-identical to the GPU's rounding).</summary>
    private static bool CastFloat16(Tensor dst, Tensor src)
    {
        if (src.DType is not (DType.F32 or DType.BF16 or DType.F16) || dst.DType is not (DType.F32 or DType.BF16 or DType.F16)) return false;
        DType sd = src.DType, dd = dst.DType;
        nint ps = src.Pointer, pd = dst.Pointer;
        int es = sd.Size(), ed = dd.Size();
        CpuVec.Chunks(src.Numel, (start, len) =>
        {
            var buf = ArrayPool<float>.Shared.Rent(len);
            try
            {
                fixed (float* f = buf)
                {
                    Float16.ToSingle(sd, (byte*)ps + (long)start * es, f, len);
                    Float16.FromSingle(dd, f, (byte*)pd + (long)start * ed, len);
                }
            }
            finally { ArrayPool<float>.Shared.Return(buf); }
        });
        return true;
    }
}
