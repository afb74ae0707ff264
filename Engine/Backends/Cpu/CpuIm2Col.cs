// Convolution geometry and the lowering of an NCHW image batch to GEMM operands.
// The "column matrix" of group g has one row per filter tap (c, r, s) of that group (row index
// (c * R + r) * S + s, matching the weight layout) and one column per output pixel of the whole
// batch, numbered j = (n * P + p) * Q + q. Its element is the input pixel that tap sees from that
// output pixel, or 0 in the padding:
//   col[(c, r, s), (n, p, q)] = x[n, g * C/groups + c, p * strideH - padH + r * dilH, q * strideW - padW + s * dilW]
// Nothing materialises the whole matrix: Im2ColB packs GEMM slivers straight from the image
// (implicit im2col), Im2Col.Rows writes a block of rows for the filter gradient, and
// Im2Col.AddRows scatters a block of rows back onto the input gradient.
// Strided convolutions first split the input into its stride phases (ConvPlanes): phase (a, b)
// holds x[i * strideH + a, j * strideW + b], so every tap reads contiguous runs of one phase plane
// and all copies are vector copies, whatever the stride.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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
    public bool Strided => StrideH != 1 || StrideW != 1;

    public static ConvGeom Of(Tensor y, Tensor x, Tensor w, Conv2dParams p) =>
        new(x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3], w.Shape[0], w.Shape[2], w.Shape[3], y.Shape[2], y.Shape[3],
            p.StrideH, p.StrideW, p.PadH, p.PadW, p.DilationH, p.DilationW, p.Groups);
}

/// <summary>
/// Where the column matrix reads from: the input planes themselves (stride 1), or the input split
/// into stride phases, each channel holding strideH * strideW planes of Hp x Wp (zero past the
/// image). Tap (r, s) reads phase plane PlaneOffset(r, s) at row p + RowShift[r], column q + ColShift[s].
/// </summary>
internal readonly unsafe partial struct ConvPlanes<T> where T : unmanaged
{
    public readonly T* Base;
    /// <summary>The padding is materialised (CpuIm2ColPadded.cs): every run a tap reads lies inside its plane.</summary>
    public readonly bool Padded;
    public readonly long ImageStride, ChannelStride;
    public readonly int Hp, Wp;
    public readonly int[] RowShift, ColShift;
    private readonly long[] _rowPlane, _colPlane;
    // Phases that some tap reads (a 1x1 stride-2 convolution reads only phase (0, 0)).
    private readonly bool[] _rowUsed, _colUsed;

    public ConvPlanes(T* basePtr, in ConvGeom g)
    {
        Base = basePtr;
        Hp = (g.H + g.StrideH - 1) / g.StrideH;
        Wp = (g.W + g.StrideW - 1) / g.StrideW;
        long plane = (long)Hp * Wp;
        ChannelStride = plane * g.StrideH * g.StrideW;
        ImageStride = ChannelStride * g.C;
        RowShift = new int[g.R];
        ColShift = new int[g.S];
        _rowPlane = new long[g.R];
        _colPlane = new long[g.S];
        _rowUsed = new bool[g.StrideH];
        _colUsed = new bool[g.StrideW];
        for (int r = 0; r < g.R; r++)
        {
            int t = r * g.DilH - g.PadH, a = Mod(t, g.StrideH);
            RowShift[r] = (t - a) / g.StrideH;
            _rowPlane[r] = a * g.StrideW * plane;
            _rowUsed[a] = true;
        }
        for (int s = 0; s < g.S; s++)
        {
            int t = s * g.DilW - g.PadW, b = Mod(t, g.StrideW);
            ColShift[s] = (t - b) / g.StrideW;
            _colPlane[s] = b * plane;
            _colUsed[b] = true;
        }
    }

    private static int Mod(int a, int m) => ((a % m) + m) % m;

    /// <summary>Elements of the phase-split copy of an input (equal to the input size for stride 1).</summary>
    public static long SplitSize(in ConvGeom g) =>
        (long)g.N * g.C * g.StrideH * g.StrideW * ((g.H + g.StrideH - 1) / g.StrideH) * ((g.W + g.StrideW - 1) / g.StrideW);

    /// <summary>True when some tap reads phase (a, b).</summary>
    public bool Used(int a, int b) => _rowUsed[a] && _colUsed[b];

    /// <summary>Offset of tap (r, s)'s phase plane for global channel c from an image's base.</summary>
    public long PlaneOffset(int c, int r, int s) => c * ChannelStride + _rowPlane[r] + _colPlane[s];

    /// <summary>The phase plane of tap (r, s) for global channel c of image n.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public T* Plane(int n, int c, int r, int s) => Base + n * ImageStride + c * ChannelStride + _rowPlane[r] + _colPlane[s];

    /// <summary>The planes of a stride-1 convolution: the input itself.</summary>
    public static ConvPlanes<T> Direct(T* x, in ConvGeom g)
    {
        if (g.Strided) throw new InvalidOperationException("strided convolutions read phase-split planes");
        return new ConvPlanes<T>(x, g);
    }

    /// <summary>Splits x into stride phases in <paramref name="dst"/> (SplitSize elements), in parallel over planes.
    /// Phases no tap reads are left unwritten.</summary>
    public static ConvPlanes<T> Split(T* x, T* dst, ConvGeom g, int threads)
    {
        var planes = new ConvPlanes<T>(dst, g);
        int hp = planes.Hp, wp = planes.Wp;
        nint xp = (nint)x, dp = (nint)dst;
        long work = (long)g.N * g.C * g.HW;
        CpuGemm.RunTasks(g.N * g.C, work < CpuGemm.SerialWork ? 1 : threads, (t, _) =>
        {
            T* src = (T*)xp + (long)t * g.HW;
            T* d = (T*)dp + (long)t * g.StrideH * g.StrideW * hp * wp;
            for (int a = 0; a < g.StrideH; a++)
                for (int i = 0; i < hp; i++)
                {
                    int h = i * g.StrideH + a;
                    for (int b = 0; b < g.StrideW; b++)
                    {
                        if (!planes.Used(a, b)) continue;
                        T* drow = d + ((long)(a * g.StrideW + b) * hp + i) * wp;
                        if (h >= g.H) VecCopy.Zero(drow, wp);
                        else if (g.StrideW == 2 && b == 0 && planes.Used(a, 1))
                        {
                            VecCopy.Deinterleave2(drow, drow + (long)hp * wp, src + (long)h * g.W, g.W);
                            for (int j = (g.W + 1) / 2; j < wp; j++) drow[j] = default;
                            for (int j = g.W / 2; j < wp; j++) drow[(long)hp * wp + j] = default;
                            b++;
                        }
                        else
                        {
                            T* srow = src + (long)h * g.W;
                            int j = 0;
                            for (int w = b; w < g.W; j++, w += g.StrideW) drow[j] = srow[w];
                            for (; j < wp; j++) drow[j] = default;
                        }
                    }
                }
        });
        return planes;
    }

    /// <summary>Zeroes the phases some tap writes, for channels [c0, c1) of image n.</summary>
    public void Clear(in ConvGeom g, int n, int c0, int c1)
    {
        long plane = (long)Hp * Wp;
        for (int c = c0; c < c1; c++)
            for (int a = 0; a < g.StrideH; a++)
                for (int b = 0; b < g.StrideW; b++)
                    if (Used(a, b)) VecCopy.Zero(Base + n * ImageStride + c * ChannelStride + (a * g.StrideW + b) * plane, (int)plane);
    }

    /// <summary>The inverse of Split for gradients: dX[n, c, i * sh + a, j * sw + b] = phase (a, b)[i, j]
    /// (0 for phases no tap touches), for channels [c0, c1) of image n.</summary>
    public void Merge(T* dx, in ConvGeom g, int n, int c0, int c1)
    {
        long plane = (long)Hp * Wp;
        T* zero = stackalloc T[Wp];
        new Span<T>(zero, Wp).Clear();
        for (int c = c0; c < c1; c++)
        {
            T* d = dx + ((long)n * g.C + c) * g.HW;
            T* p = Base + n * ImageStride + c * ChannelStride;
            for (int h = 0; h < g.H; h++)
            {
                int a = h % g.StrideH, i = h / g.StrideH;
                T* drow = d + (long)h * g.W;
                T* prow = p + a * g.StrideW * plane + (long)i * Wp;
                if (g.StrideW == 2)
                    VecCopy.Interleave2(drow, Used(a, 0) ? prow : zero, Used(a, 1) ? prow + plane : zero, g.W);
                else
                    for (int w = 0; w < g.W; w++)
                    {
                        int b = w % g.StrideW;
                        drow[w] = Used(a, b) ? prow[b * plane + w / g.StrideW] : default;
                    }
            }
        }
    }
}

internal static unsafe class Im2Col
{
    /// <summary>
    /// One run of a column-matrix row: dst[t] = plane[row, col0 + t] for t &lt; len, zero outside
    /// the Hp x Wp plane.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Segment<T>(T* dst, T* plane, int hp, int wp, int row, int col0, int len) where T : unmanaged
    {
        if ((uint)row >= (uint)hp)
        {
            VecCopy.Zero(dst, len);
            return;
        }
        int lo = Math.Clamp(-col0, 0, len), hi = Math.Clamp(wp - col0, lo, len);
        for (int t = 0; t < lo; t++) dst[t] = default;
        VecCopy.Copy(dst + lo, plane + (long)row * wp + col0 + lo, hi - lo);
        for (int t = hi; t < len; t++) dst[t] = default;
    }

    /// <summary>
    /// Segment with AVX-512 masked loads (F32/F64): one load per vector whatever the clipping, no
    /// scalar edges. Stores whole vectors, so it may write zeros up to one vector past dst + len.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SegmentMasked<T>(T* dst, T* plane, int hp, int wp, int row, int col0, int len) where T : unmanaged
    {
        if ((uint)row >= (uint)hp)
        {
            for (int t = 0; t < len; t += Vector512<T>.Count) Vector512<T>.Zero.Store(dst + t);
            return;
        }
        T* src = plane + (long)row * wp + col0;
        if (typeof(T) == typeof(float))
        {
            var lane = Vector512<int>.Indices;
            for (int t = 0; t < len; t += 16)
            {
                var at = lane + Vector512.Create(col0 + t);
                var m = Vector512.GreaterThanOrEqual(at, Vector512<int>.Zero) & Vector512.LessThan(at, Vector512.Create(wp))
                    & Vector512.LessThan(lane, Vector512.Create(len - t));
                Avx512F.MaskLoad((float*)src + t, m.AsSingle(), Vector512<float>.Zero).Store((float*)dst + t);
            }
        }
        else
        {
            var lane = Vector512<long>.Indices;
            for (int t = 0; t < len; t += 8)
            {
                var at = lane + Vector512.Create((long)col0 + t);
                var m = Vector512.GreaterThanOrEqual(at, Vector512<long>.Zero) & Vector512.LessThan(at, Vector512.Create((long)wp))
                    & Vector512.LessThan(lane, Vector512.Create((long)(len - t)));
                Avx512F.MaskLoad((double*)src + t, m.AsDouble(), Vector512<double>.Zero).Store((double*)dst + t);
            }
        }
    }

    /// <summary>The adjoint of Segment: plane[row, col0 + t] += src[t] inside the plane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AddSegment<T>(T* plane, int hp, int wp, int row, int col0, int len, T* src) where T : unmanaged, INumber<T>
    {
        if ((uint)row >= (uint)hp) return;
        int lo = Math.Clamp(-col0, 0, len), hi = Math.Clamp(wp - col0, lo, len);
        VecCopy.Add(plane + (long)row * wp + col0 + lo, src + lo, hi - lo);
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
    public static unsafe void Rows<T>(T* dst, int ld, in ConvPlanes<T> src, in ConvGeom g, int group, int row0, int row1, long j0, int count)
        where T : unmanaged
    {
        Span<(int N, int P, int Q, int Len)> runs = stackalloc (int, int, int, int)[MaxRuns(g, count)];
        int nRuns = Runs(g, j0, count, runs);
        int rs = g.R * g.S;
        if (src.Padded)
        {
            PaddedRuns.Rows(dst, ld, src, g, group, row0, row1, runs[..nRuns], count);
            return;
        }
        // Masked whole-vector copies (no scalar edges) for the runs whose whole vectors end inside the row:
        // the zeros they store past a run's end land on the following runs, which are written after it.
        bool masked = Avx512F.IsSupported && (typeof(T) == typeof(float) || typeof(T) == typeof(double));
        int vec = 64 / sizeof(T);
        for (int row = row0; row < row1; row++)
        {
            int c = row / rs, t = row % rs, r = t / g.S, s = t % g.S;
            int dr = src.RowShift[r], dc = src.ColShift[s];
            T* d = dst + (long)(row - row0) * ld;
            int off = 0;
            for (int i = 0; i < nRuns; i++)
            {
                var (n, p, q, len) = runs[i];
                T* plane = src.Plane(n, group * g.Cg + c, r, s);
                if (masked && off + (len + vec - 1) / vec * vec <= count) SegmentMasked(d + off, plane, src.Hp, src.Wp, p + dr, q + dc, len);
                else Segment(d + off, plane, src.Hp, src.Wp, p + dr, q + dc, len);
                off += len;
            }
            if (ld > count) VecCopy.Zero(d + count, ld - count);
        }
    }

    /// <summary>
    /// Adds rows [row0, row1) of a column-matrix block (leading dimension ld, columns [j0, j0 + count)
    /// of group <paramref name="group"/>) onto the input-gradient planes: the adjoint of Rows.
    /// Callers must not run two blocks that touch the same image and group at once.
    /// </summary>
    public static void AddRows<T>(in ConvPlanes<T> dst, T* src, int ld, in ConvGeom g, int group, int row0, int row1, long j0, int count)
        where T : unmanaged, INumber<T>
    {
        Span<(int N, int P, int Q, int Len)> runs = stackalloc (int, int, int, int)[MaxRuns(g, count)];
        int nRuns = Runs(g, j0, count, runs);
        int rs = g.R * g.S;
        for (int row = row0; row < row1; row++)
        {
            int c = row / rs, t = row % rs, r = t / g.S, s = t % g.S;
            int dr = dst.RowShift[r], dc = dst.ColShift[s];
            T* v = src + (long)(row - row0) * ld;
            int off = 0;
            for (int i = 0; i < nRuns; i++)
            {
                var (n, p, q, len) = runs[i];
                AddSegment(dst.Plane(n, group * g.Cg + c, r, s), dst.Hp, dst.Wp, p + dr, q + dc, len, v + off);
                off += len;
            }
        }
    }
}

/// <summary>Packs GEMM slivers of a group's column matrix straight from the image planes (forward convolution).</summary>
internal readonly unsafe struct Im2ColB<T>(ConvPlanes<T> src, ConvGeom g, int group) : IPackB<T> where T : unmanaged
{
    /// <summary>Elements callers must allocate past the packed block: the masked copies store whole
    /// vectors, so the last run of the last row may write (zeros) up to one vector beyond it.</summary>
    public const int Slack = 64;

    public void Pack(int pc, int kc, int n0, int nc, int NR, T* dst)
    {
        var geom = g;
        var planes = src;
        // Per row of this k block: its plane (from an image's base) and its row and column shifts.
        long* tapPlane = stackalloc long[kc];
        int* tapRow = stackalloc int[kc];
        int* tapCol = stackalloc int[kc];
        {
            int rs = geom.R * geom.S, c = pc / rs, t = pc % rs, r = t / geom.S, s = t % geom.S;
            for (int k = 0; k < kc; k++)
            {
                tapPlane[k] = planes.PlaneOffset(group * geom.Cg + c, r, s);
                tapRow[k] = planes.RowShift[r];
                tapCol[k] = planes.ColShift[s];
                if (++s == geom.S) { s = 0; if (++r == geom.R) { r = 0; c++; } }
            }
        }
        int maxRuns = Im2Col.MaxRuns(geom, NR);
        Span<(int N, int P, int Q, int Len)> runs = stackalloc (int, int, int, int)[maxRuns];
        long* runBase = stackalloc long[maxRuns];
        int hp = planes.Hp, wp = planes.Wp;
        if (planes.Padded)
        {
            PaddedRuns.Pack(planes, geom, n0, nc, NR, kc, tapPlane, tapRow, tapCol, dst);
            return;
        }
        bool masked = Avx512F.IsSupported && (typeof(T) == typeof(float) || typeof(T) == typeof(double));
        for (int j0 = 0; j0 < nc; j0 += NR)
        {
            int nr = Math.Min(NR, nc - j0);
            int nRuns = Im2Col.Runs(geom, n0 + j0, nr, runs);
            for (int i = 0; i < nRuns; i++) runBase[i] = runs[i].N * planes.ImageStride;
            T* d = dst + (long)j0 * kc;
            for (int k = 0; k < kc; k++)
            {
                T* drow = d + k * NR;
                T* tb = planes.Base + tapPlane[k];
                int dr = tapRow[k], dc = tapCol[k];
                int off = 0;
                for (int i = 0; i < nRuns; i++)
                {
                    var (_, p, q, len) = runs[i];
                    T* plane = tb + runBase[i];
                    if (masked) Im2Col.SegmentMasked(drow + off, plane, hp, wp, p + dr, q + dc, len);
                    else Im2Col.Segment(drow + off, plane, hp, wp, p + dr, q + dc, len);
                    off += len;
                }
                for (int u = nr; u < NR; u++) drow[u] = default;
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
                    VecCopy.Copy(drow + off, dy + ((long)n * g.K + group * g.Kg + pc + k) * pq + at, len);
                    off += len;
                    j += len;
                }
                for (int u = nr; u < NR; u++) drow[u] = default;
            }
        }
    }
}
