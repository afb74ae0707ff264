// Convolution geometry and the lowering of an NCHW image batch to GEMM operands.
// The "column matrix" of group g has one row per filter tap (c, r, s) of that group (row index
// (c * R + r) * S + s, matching the weight layout) and one column per output pixel of the whole
// batch, numbered j = (n * P + p) * Q + q. Its element is the input pixel that tap sees from that
// output pixel, or 0 in the padding:
//   col[(c, r, s), (n, p, q)] = x[n, g * C/groups + c, p * strideH - padH + r * dilH, q * strideW - padW + s * dilW]
// Nothing materialises the whole matrix: Im2ColB packs GEMM slivers straight from the image
// (implicit im2col), Im2ColRows writes a block of rows for the filter gradient, and Col2ImAdd
// scatters a block of column-matrix rows back onto the input gradient.
using System.Numerics;

namespace ResidualEngine.Backends.Cpu;

/// <summary>Sizes of one convolution: x (N, C, H, W), w (K, C/groups, R, S), y (N, K, P, Q).</summary>
internal readonly record struct ConvGeom(int N, int C, int H, int W, int K, int R, int S, int P, int Q,
    int StrideH, int StrideW, int PadH, int PadW, int DilH, int DilW, int Groups)
{
    public int Cg => C / Groups;
    public int Kg => K / Groups;
    /// <summary>Taps per group: the GEMM reduction length of the forward pass.</summary>
    public int Taps => Cg * R * S;
    public int PQ => P * Q;
    public int HW => H * W;
    /// <summary>Columns of the column matrix: every output pixel of the batch.</summary>
    public long Cols => (long)N * P * Q;

    public static ConvGeom Of(Tensor y, Tensor x, Tensor w, Conv2dParams p) =>
        new(x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3], w.Shape[0], w.Shape[2], w.Shape[3], y.Shape[2], y.Shape[3],
            p.StrideH, p.StrideW, p.PadH, p.PadW, p.DilationH, p.DilationW, p.Groups);
}

internal static unsafe class Im2Col
{
    /// <summary>
    /// Copies one row segment of the column matrix: for the output pixels q0 .. q0 + len - 1 of
    /// output row p, the input values of one tap; zero where the tap falls in the padding.
    /// <paramref name="plane"/> is the input channel plane (H x W).
    /// </summary>
    public static void Segment<T>(T* dst, T* plane, in ConvGeom g, int p, int q0, int len, int r, int s) where T : unmanaged
    {
        int ih = p * g.StrideH - g.PadH + r * g.DilH;
        if ((uint)ih >= (uint)g.H)
        {
            new Span<T>(dst, len).Clear();
            return;
        }
        T* src = plane + (long)ih * g.W;
        int iw0 = q0 * g.StrideW - g.PadW + s * g.DilW;
        if (g.StrideW == 1)
        {
            // Valid outputs t satisfy 0 <= iw0 + t < W.
            int lo = Math.Clamp(-iw0, 0, len), hi = Math.Clamp(g.W - iw0, lo, len);
            if (lo > 0) new Span<T>(dst, lo).Clear();
            if (hi > lo) new ReadOnlySpan<T>(src + iw0 + lo, hi - lo).CopyTo(new Span<T>(dst + lo, hi - lo));
            if (hi < len) new Span<T>(dst + hi, len - hi).Clear();
        }
        else
        {
            int sw = g.StrideW;
            for (int t = 0, iw = iw0; t < len; t++, iw += sw) dst[t] = (uint)iw < (uint)g.W ? src[iw] : default;
        }
    }

    /// <summary>Splits columns [j0, j0 + count) into runs that stay inside one output row: (n, p, q, length).</summary>
    public static int Runs(in ConvGeom g, long j0, int count, Span<(int N, int P, int Q, int Len)> runs)
    {
        int pq = g.PQ;
        int n = (int)(j0 / pq), rem = (int)(j0 % pq);
        int p = rem / g.Q, q = rem % g.Q;
        int k = 0;
        while (count > 0)
        {
            int len = Math.Min(g.Q - q, count);
            runs[k++] = (n, p, q, len);
            count -= len;
            q = 0;
            if (++p == g.P) { p = 0; n++; }
        }
        return k;
    }

    /// <summary>Upper bound on the number of runs for count consecutive columns.</summary>
    public static int MaxRuns(in ConvGeom g, int count) => count / g.Q + 2;

    /// <summary>
    /// Rows [row0, row1) of group <paramref name="group"/>'s column matrix, columns [j0, j0 + count),
    /// written densely with leading dimension ld (the padding columns up to ld are zeroed).
    /// </summary>
    public static void Rows<T>(T* dst, int ld, T* x, in ConvGeom g, int group, int row0, int row1, long j0, int count)
        where T : unmanaged
    {
        Span<(int N, int P, int Q, int Len)> runs = stackalloc (int, int, int, int)[MaxRuns(g, count)];
        int nRuns = Runs(g, j0, count, runs);
        int rs = g.R * g.S;
        for (int row = row0; row < row1; row++)
        {
            int c = row / rs, t = row % rs, r = t / g.S, s = t % g.S;
            T* d = dst + (long)(row - row0) * ld;
            int off = 0;
            for (int i = 0; i < nRuns; i++)
            {
                var (n, p, q, len) = runs[i];
                T* plane = x + ((long)n * g.C + group * g.Cg + c) * g.HW;
                Segment(d + off, plane, g, p, q, len, r, s);
                off += len;
            }
            if (ld > count) new Span<T>(d + count, ld - count).Clear();
        }
    }

    /// <summary>
    /// Adds rows [row0, row1) of a column-matrix block (leading dimension ld, columns [j0, j0 + count)
    /// of group <paramref name="group"/>) onto the input-shaped tensor dx: the adjoint of Rows.
    /// Callers must not run two blocks that touch the same image and group at once.
    /// </summary>
    public static void Col2ImAdd<T>(T* dx, T* src, int ld, in ConvGeom g, int group, int row0, int row1, long j0, int count)
        where T : unmanaged, INumber<T>
    {
        Span<(int N, int P, int Q, int Len)> runs = stackalloc (int, int, int, int)[MaxRuns(g, count)];
        int nRuns = Runs(g, j0, count, runs);
        int rs = g.R * g.S;
        for (int row = row0; row < row1; row++)
        {
            int c = row / rs, t = row % rs, r = t / g.S, s = t % g.S;
            T* v = src + (long)(row - row0) * ld;
            int off = 0;
            for (int i = 0; i < nRuns; i++)
            {
                var (n, p, q0, len) = runs[i];
                int ih = p * g.StrideH - g.PadH + r * g.DilH;
                if ((uint)ih < (uint)g.H)
                {
                    T* plane = dx + ((long)n * g.C + group * g.Cg + c) * g.HW + (long)ih * g.W;
                    int iw = q0 * g.StrideW - g.PadW + s * g.DilW;
                    if (g.StrideW == 1)
                    {
                        int lo = Math.Clamp(-iw, 0, len), hi = Math.Clamp(g.W - iw, lo, len);
                        for (int u = lo; u < hi; u++) plane[iw + u] += v[off + u];
                    }
                    else
                    {
                        for (int u = 0; u < len; u++, iw += g.StrideW)
                            if ((uint)iw < (uint)g.W) plane[iw] += v[off + u];
                    }
                }
                off += len;
            }
        }
    }
}

/// <summary>Packs GEMM slivers of a group's column matrix straight from the image (forward convolution).</summary>
internal readonly unsafe struct Im2ColB<T>(T* x, ConvGeom g, int group) : IPackB<T> where T : unmanaged
{
    public void Pack(int pc, int kc, int n0, int nc, int NR, T* dst)
    {
        var geom = g;
        Span<(int N, int P, int Q, int Len)> runs = stackalloc (int, int, int, int)[Im2Col.MaxRuns(geom, NR)];
        int rs = geom.R * geom.S;
        long groupBase = (long)group * geom.Cg * geom.HW;
        for (int j0 = 0; j0 < nc; j0 += NR)
        {
            int nr = Math.Min(NR, nc - j0);
            int nRuns = Im2Col.Runs(geom, n0 + j0, nr, runs);
            T* d = dst + (long)j0 * kc;
            int c = pc / rs, t = pc % rs, r = t / geom.S, s = t % geom.S;
            for (int k = 0; k < kc; k++)
            {
                T* drow = d + k * NR;
                int off = 0;
                for (int i = 0; i < nRuns; i++)
                {
                    var (n, p, q, len) = runs[i];
                    T* plane = x + (long)n * geom.C * geom.HW + groupBase + (long)c * geom.HW;
                    Im2Col.Segment(drow + off, plane, geom, p, q, len, r, s);
                    off += len;
                }
                if (nr < NR) new Span<T>(drow + nr, NR - nr).Clear();
                if (++s == geom.S) { s = 0; if (++r == geom.R) { r = 0; c++; } }
            }
        }
    }
}

/// <summary>
/// Packs GEMM slivers of a group's output gradient viewed as a (K/groups) x (N * P * Q) matrix:
/// row k, column (n, p, q) is dy[n, group * K/groups + k, p, q].
/// </summary>
internal readonly unsafe struct ImageColumnsB<T>(T* dy, ConvGeom g, int group) : IPackB<T> where T : unmanaged
{
    public void Pack(int pc, int kc, int n0, int nc, int NR, T* dst)
    {
        int pq = g.PQ;
        for (int j0 = 0; j0 < nc; j0 += NR)
        {
            int nr = Math.Min(NR, nc - j0);
            T* d = dst + (long)j0 * kc;
            for (int k = 0; k < kc; k++)
            {
                T* drow = d + k * NR;
                long j = n0 + j0;
                int off = 0;
                while (off < nr)
                {
                    int n = (int)(j / pq), at = (int)(j % pq);
                    int len = Math.Min(nr - off, pq - at);
                    T* src = dy + ((long)n * g.K + group * g.Kg + pc + k) * pq + at;
                    new ReadOnlySpan<T>(src, len).CopyTo(new Span<T>(drow + off, len));
                    off += len;
                    j += len;
                }
                if (nr < NR) new Span<T>(drow + nr, NR - nr).Clear();
            }
        }
    }
}
