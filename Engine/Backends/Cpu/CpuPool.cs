// Max, average and global average pooling on the CPU, NCHW, F32 and F64, one thread per
// (n, c) plane. Windows follow PyTorch: a window starts at p * stride - pad; max pooling skips
// padding (and propagates NaN); average pooling divides by the window clipped to the padded
// input (count_include_pad) or to the real input, and ceil-mode windows that hang past the
// padding are clipped first in both cases.
using System.Numerics;

namespace ResidualEngine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void MaxPoolForward(Tensor y, Tensor indices, Tensor x, Pool2dParams p)
    {
        if (RunCanonical("ooi", true, t => MaxPoolForward(t[0]!, t[1]!, t[2]!, p), y, indices, x)) return; // 16-bit / NHWC: CpuMixed.cs
        RequireFloat(x, "MaxPoolForward");
        if (indices.DType != DType.I32) throw new NotSupportedException($"MaxPoolForward: indices must be I32, got {indices.DType}");
        var g = PoolGeom.Of(x, y);
        if (x.DType == DType.F32) MaxFwd<float>(y.Pointer, indices.Pointer, x.Pointer, g, p);
        else MaxFwd<double>(y.Pointer, indices.Pointer, x.Pointer, g, p);
    }

    public void MaxPoolBackward(Tensor dX, Tensor dY, Tensor indices, Pool2dParams p)
    {
        if (RunCanonical("oii", true, t => MaxPoolBackward(t[0]!, t[1]!, t[2]!, p), dX, dY, indices)) return;
        RequireFloat(dX, "MaxPoolBackward");
        var g = PoolGeom.Of(dX, dY);
        bool ok = dX.DType == DType.F32 ? MaxBwd<float>(dX.Pointer, dY.Pointer, indices.Pointer, g)
            : MaxBwd<double>(dX.Pointer, dY.Pointer, indices.Pointer, g);
        if (!ok) throw new ArgumentException($"MaxPoolBackward: indices hold offsets outside planes of {g.HW} elements");
    }

    public void AvgPoolForward(Tensor y, Tensor x, Pool2dParams p)
    {
        if (RunCanonical("oi", true, t => AvgPoolForward(t[0]!, t[1]!, p), y, x)) return;
        RequireFloat(x, "AvgPoolForward");
        var g = PoolGeom.Of(x, y);
        if (x.DType == DType.F32) AvgFwd<float>(y.Pointer, x.Pointer, g, p);
        else AvgFwd<double>(y.Pointer, x.Pointer, g, p);
    }

    public void AvgPoolBackward(Tensor dX, Tensor dY, Pool2dParams p)
    {
        if (RunCanonical("oi", true, t => AvgPoolBackward(t[0]!, t[1]!, p), dX, dY)) return;
        RequireFloat(dX, "AvgPoolBackward");
        var g = PoolGeom.Of(dX, dY);
        if (dX.DType == DType.F32) AvgBwd<float>(dX.Pointer, dY.Pointer, g, p);
        else AvgBwd<double>(dX.Pointer, dY.Pointer, g, p);
    }

    public void GlobalAvgPoolForward(Tensor y, Tensor x)
    {
        if (RunCanonical("oi", true, t => GlobalAvgPoolForward(t[0]!, t[1]!), y, x)) return;
        RequireFloat(x, "GlobalAvgPoolForward");
        var g = PoolGeom.Of(x, y);
        if (x.DType == DType.F32) GapFwd<float>(y.Pointer, x.Pointer, g);
        else GapFwd<double>(y.Pointer, x.Pointer, g);
    }

    public void GlobalAvgPoolBackward(Tensor dX, Tensor dY)
    {
        if (RunCanonical("oi", true, t => GlobalAvgPoolBackward(t[0]!, t[1]!), dX, dY)) return;
        RequireFloat(dX, "GlobalAvgPoolBackward");
        var g = PoolGeom.Of(dX, dY);
        if (dX.DType == DType.F32) GapBwd<float>(dX.Pointer, dY.Pointer, g);
        else GapBwd<double>(dX.Pointer, dY.Pointer, g);
    }

    /// <summary>Planes (N*C), input H x W and output P x Q.</summary>
    private readonly record struct PoolGeom(int Planes, int H, int W, int P, int Q)
    {
        public static PoolGeom Of(Tensor x, Tensor y)
        {
            if (x.Rank != 4 || y.Rank != 4) throw new ArgumentException($"pooling needs 4-d tensors, got {x.Shape} and {y.Shape}");
            return new(checked(x.Shape[0] * x.Shape[1]), x.Shape[2], x.Shape[3], y.Shape[2], y.Shape[3]);
        }
        public int HW => H * W;
        public int PQ => P * Q;
    }

    private static void MaxFwd<T>(nint y, nint idx, nint x, PoolGeom g, Pool2dParams p) where T : unmanaged, IFloatingPointIeee754<T>
    {
        CpuVec.For(g.Planes, (long)g.PQ * p.KernelH * p.KernelW, plane =>
        {
            var xs = new ReadOnlySpan<T>((T*)x + (long)plane * g.HW, g.HW);
            var ys = new Span<T>((T*)y + (long)plane * g.PQ, g.PQ);
            var ids = new Span<int>((int*)idx + (long)plane * g.PQ, g.PQ);
            for (int op = 0; op < g.P; op++)
            {
                int h0 = op * p.StrideH - p.PadH, h1 = Math.Min(h0 + p.KernelH, g.H);
                h0 = Math.Max(h0, 0);
                for (int oq = 0; oq < g.Q; oq++)
                {
                    int w0 = oq * p.StrideW - p.PadW, w1 = Math.Min(w0 + p.KernelW, g.W);
                    w0 = Math.Max(w0, 0);
                    T best = T.NegativeInfinity;
                    int bi = h0 * g.W + w0;
                    for (int h = h0; h < h1; h++)
                        for (int w = w0; w < w1; w++)
                        {
                            T v = xs[h * g.W + w];
                            if (v > best || T.IsNaN(v)) { best = v; bi = h * g.W + w; }
                        }
                    ys[op * g.Q + oq] = best;
                    ids[op * g.Q + oq] = bi;
                }
            }
        });
    }

    private static bool MaxBwd<T>(nint dx, nint dy, nint idx, PoolGeom g) where T : unmanaged, INumber<T>
    {
        bool ok = true;
        CpuVec.For(g.Planes, g.HW + g.PQ, plane =>
        {
            var dxs = new Span<T>((T*)dx + (long)plane * g.HW, g.HW);
            var dys = new ReadOnlySpan<T>((T*)dy + (long)plane * g.PQ, g.PQ);
            var ids = new ReadOnlySpan<int>((int*)idx + (long)plane * g.PQ, g.PQ);
            dxs.Clear();
            for (int i = 0; i < dys.Length; i++)
            {
                int k = ids[i];
                if ((uint)k < (uint)g.HW) dxs[k] += dys[i];
                else ok = false;
            }
        });
        return ok;
    }

    /// <summary>Clipped window [h0, h1) x [w0, w1) of output (op, oq) and its divisor.</summary>
    private static (int H0, int H1, int W0, int W1, int Div) AvgWindow(int op, int oq, PoolGeom g, Pool2dParams p)
    {
        int h0 = op * p.StrideH - p.PadH, w0 = oq * p.StrideW - p.PadW;
        int h1 = Math.Min(h0 + p.KernelH, g.H + p.PadH), w1 = Math.Min(w0 + p.KernelW, g.W + p.PadW);
        int padded = (h1 - h0) * (w1 - w0);
        h0 = Math.Max(h0, 0);
        w0 = Math.Max(w0, 0);
        h1 = Math.Min(h1, g.H);
        w1 = Math.Min(w1, g.W);
        int div = p.CountIncludePad ? padded : (h1 - h0) * (w1 - w0);
        return (h0, h1, w0, w1, Math.Max(div, 1));
    }

    private static void AvgFwd<T>(nint y, nint x, PoolGeom g, Pool2dParams p) where T : unmanaged, INumber<T>
    {
        CpuVec.For(g.Planes, (long)g.PQ * p.KernelH * p.KernelW, plane =>
        {
            var xs = new ReadOnlySpan<T>((T*)x + (long)plane * g.HW, g.HW);
            var ys = new Span<T>((T*)y + (long)plane * g.PQ, g.PQ);
            for (int op = 0; op < g.P; op++)
                for (int oq = 0; oq < g.Q; oq++)
                {
                    var (h0, h1, w0, w1, div) = AvgWindow(op, oq, g, p);
                    T s = T.Zero;
                    for (int h = h0; h < h1; h++)
                        for (int w = w0; w < w1; w++) s += xs[h * g.W + w];
                    ys[op * g.Q + oq] = s / T.CreateTruncating(div);
                }
        });
    }

    private static void AvgBwd<T>(nint dx, nint dy, PoolGeom g, Pool2dParams p) where T : unmanaged, INumber<T>
    {
        CpuVec.For(g.Planes, (long)g.PQ * p.KernelH * p.KernelW + g.HW, plane =>
        {
            var dxs = new Span<T>((T*)dx + (long)plane * g.HW, g.HW);
            var dys = new ReadOnlySpan<T>((T*)dy + (long)plane * g.PQ, g.PQ);
            dxs.Clear();
            for (int op = 0; op < g.P; op++)
                for (int oq = 0; oq < g.Q; oq++)
                {
                    var (h0, h1, w0, w1, div) = AvgWindow(op, oq, g, p);
                    T v = dys[op * g.Q + oq] / T.CreateTruncating(div);
                    for (int h = h0; h < h1; h++)
                        for (int w = w0; w < w1; w++) dxs[h * g.W + w] += v;
                }
        });
    }

    private static void GapFwd<T>(nint y, nint x, PoolGeom g) where T : unmanaged, INumber<T>
    {
        CpuVec.For(g.Planes, g.HW, plane =>
        {
            var xs = new ReadOnlySpan<T>((T*)x + (long)plane * g.HW, g.HW);
            ((T*)y)[plane] = T.CreateTruncating(CpuVec.Sum(xs) / g.HW);
        });
    }

    private static void GapBwd<T>(nint dx, nint dy, PoolGeom g) where T : unmanaged, INumber<T>
    {
        CpuVec.For(g.Planes, g.HW, plane =>
        {
            T v = ((T*)dy)[plane] / T.CreateTruncating(g.HW);
            new Span<T>((T*)dx + (long)plane * g.HW, g.HW).Fill(v);
        });
    }
}
