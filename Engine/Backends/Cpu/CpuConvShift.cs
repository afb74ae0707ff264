// Convolution without im2col for images of useful width ("shift GEMM").
// The input is copied once into zero-padded stride-phase planes of Rows x Width, where Width is
// the output width Q plus the spread of the taps' column shifts. Number the output pixels of an
// image j = p * Width + q, with q running over the whole Width (q >= Q are extra "garbage"
// columns). Then for every tap (c, r, s) the row of the column matrix is the padded plane itself
// read from a fixed offset: col[(c, r, s), j] = plane[TapOffset(c, r, s) + j]. The GEMM kernels
// read their B rows straight from the planes through a table of per-tap offsets, so nothing is
// packed per tap; the price is Width - Q wasted columns per output row, small once Q is a few
// dozen (hence the Q >= MinWidth rule), and one pass over the output to drop them.
using System.Numerics;

namespace ResidualEngine.Backends.Cpu;

/// <summary>Zero-padded stride-phase planes of an NCHW input, laid out [n][c][phase][Rows][Width].</summary>
internal readonly unsafe struct ShiftPlanes<T> where T : unmanaged
{
    public readonly T* Base;
    public readonly int Rows, Width, MinRow, MinCol;
    public readonly long PlaneSize, ChannelStride, ImageStride;
    /// <summary>Per tap r * S + s: offset of the element read for output pixel (0, 0) from the channel base.</summary>
    public readonly int[] TapOffset;
    private readonly ConvGeom _g;
    private readonly bool[] _rowUsed, _colUsed;
    private readonly int[] _slot; // storage slot of phase a * strideW + b, or -1 when no tap reads it

    /// <summary>Output columns shorter than this use the packed path instead (too much garbage otherwise).</summary>
    public const int MinWidth = 16;

    public ShiftPlanes(T* basePtr, in ConvGeom g)
    {
        Base = basePtr;
        _g = g;
        var rowShift = new int[g.R];
        var colShift = new int[g.S];
        var rowPhase = new int[g.R];
        var colPhase = new int[g.S];
        _rowUsed = new bool[g.StrideH];
        _colUsed = new bool[g.StrideW];
        for (int r = 0; r < g.R; r++) (rowShift[r], rowPhase[r]) = Split(r * g.DilH - g.PadH, g.StrideH);
        for (int s = 0; s < g.S; s++) (colShift[s], colPhase[s]) = Split(s * g.DilW - g.PadW, g.StrideW);
        MinRow = rowShift.Min();
        MinCol = colShift.Min();
        Rows = g.P + rowShift.Max() - MinRow;
        Width = g.Q + colShift.Max() - MinCol;
        PlaneSize = (long)Rows * Width;
        foreach (int a in rowPhase) _rowUsed[a] = true;
        foreach (int b in colPhase) _colUsed[b] = true;
        // Only the phases some tap reads are stored (a 1x1 stride-2 convolution keeps one of four).
        _slot = new int[g.StrideH * g.StrideW];
        int used = 0;
        for (int a = 0; a < g.StrideH; a++)
            for (int b = 0; b < g.StrideW; b++)
                _slot[a * g.StrideW + b] = _rowUsed[a] && _colUsed[b] ? used++ : -1;
        ChannelStride = PlaneSize * used;
        ImageStride = ChannelStride * g.C;
        TapOffset = new int[g.R * g.S];
        for (int r = 0; r < g.R; r++)
            for (int s = 0; s < g.S; s++)
                TapOffset[r * g.S + s] = checked((int)(_slot[rowPhase[r] * g.StrideW + colPhase[s]] * PlaneSize
                    + (long)(rowShift[r] - MinRow) * Width + (colShift[s] - MinCol)));
    }

    /// <summary>Splits a tap's offset t = shift * stride + phase with 0 &lt;= phase &lt; stride.</summary>
    private static (int Shift, int Phase) Split(int t, int stride)
    {
        int phase = ((t % stride) + stride) % stride;
        return ((t - phase) / stride, phase);
    }

    /// <summary>Columns of one image: P output rows of Width.</summary>
    public int ColsPerImage => _g.P * Width;

    /// <summary>Whether this geometry should use the shift path (and fits its 32-bit tap offsets).</summary>
    public static bool Suits(in ConvGeom g)
    {
        if (g.Q < MinWidth) return false;
        var probe = new ShiftPlanes<T>(null, g);
        return probe.ChannelStride * g.Cg < int.MaxValue / 2;
    }

    /// <summary>Elements to allocate: the planes plus zeroed slack, since tiles may read a little past the last plane.</summary>
    public long AllocSize => ImageStride * _g.N + Slack;
    private long Slack => Width + 256;

    /// <summary>Planes of x in workspace memory, filled.</summary>
    public static ShiftPlanes<T> Fill(T* x, in ConvGeom g, CpuWorkspace ws, int threads)
    {
        var planes = new ShiftPlanes<T>(ws.Get<T>(new ShiftPlanes<T>(null, g).AllocSize), g);
        planes.Fill(x, threads);
        return planes;
    }

    /// <summary>Fills the planes from x (N, C, H, W), in parallel over (image, channel).</summary>
    private void Fill(T* x, int threads)
    {
        var g = _g;
        var self = this;
        nint xp = (nint)x;
        VecCopy.Zero(Base + ImageStride * g.N, (int)Slack);
        long work = (long)g.N * g.C * g.HW;
        CpuGemm.RunTasks(g.N * g.C, work < CpuGemm.SerialWork ? 1 : threads, (t, s) =>
            self.FillPlane((T*)xp + (long)t * g.HW, self.Base + t * self.ChannelStride, s.Get<T>(CpuScratch.SlotA, g.W + 64)));
    }

    /// <summary>Fills the phase planes of one input channel plane; <paramref name="tmp"/> holds W elements.</summary>
    private void FillPlane(T* src, T* dst, T* tmp)
    {
        var g = _g;
        int sw = g.StrideW;
        int phaseW = (g.W + sw - 1) / sw; // columns of the widest phase of a row (phase 0)
        for (int a = 0; a < g.StrideH; a++)
            for (int i = 0; i < Rows; i++)
            {
                int h = (i + MinRow) * g.StrideH + a;
                if (!_rowUsed[a]) break;
                bool inside = (uint)h < (uint)g.H;
                T* row = src + (long)h * g.W;
                // Split the row into its column phases once: phase b of the row is tmp[b * phaseW ..].
                if (inside && sw > 1)
                {
                    if (sw == 2) VecCopy.Deinterleave2(tmp, tmp + phaseW, row, g.W);
                    else
                        for (int b = 0; b < sw; b++)
                            for (int w = b, u = 0; w < g.W; w += sw, u++) tmp[b * phaseW + u] = row[w];
                }
                for (int b = 0; b < sw; b++)
                {
                    int slot = _slot[a * sw + b];
                    if (slot < 0) continue;
                    T* d = dst + slot * PlaneSize + (long)i * Width;
                    if (!inside) { VecCopy.Zero(d, Width); continue; }
                    // Plane column u holds phase-b column e = u + MinCol, valid for 0 <= e < count.
                    T* ph = sw == 1 ? row : tmp + b * phaseW;
                    int count = (g.W - b + sw - 1) / sw;
                    int lo = Math.Clamp(-MinCol, 0, Width), hi = Math.Clamp(count - MinCol, lo, Width);
                    for (int u = 0; u < lo; u++) d[u] = default;
                    VecCopy.Copy(d + lo, ph + lo + MinCol, hi - lo);
                    for (int u = hi; u < Width; u++) d[u] = default;
                }
            }
    }

    private static int CeilDiv(int a, int b) => a >= 0 ? (a + b - 1) / b : -(-a / b);
}

internal static unsafe partial class CpuConv
{
    /// <summary>Forward convolution through shift planes; see the file comment. Same contract as Forward.</summary>
    private static void ForwardShift<T>(T* y, T* x, T* w, ConvGeom g, int threads, ConvEpilogue<T> epi, bool flippedWeights, T* prepacked)
        where T : unmanaged, INumber<T>
    {
        var isa = CpuGemm.Isa;
        var (MR, NR) = GemmKernels.TileShape<T>(isa);
        int kg = g.Kg, taps = g.Taps, rs = g.R * g.S;
        int KCb = CpuGemm.KC<T>();
        using var own = CpuWorkspace.Begin();
        var planes = ShiftPlanes<T>.Fill(x, g, own, threads);
        int mPad = CpuGemm.PrepackSize<T>(isa, kg);
        long packedPerGroup = (long)mPad * taps;
        T* wp = prepacked != null ? prepacked : own.Get<T>(packedPerGroup * g.Groups);
        if (prepacked == null) PackWeights(isa, w, g, flippedWeights, wp, threads);
        // Offsets of every tap of a group from its first channel's plane base.
        int* tapOff = (int*)own.Get<int>(taps);
        for (int t = 0; t < taps; t++) tapOff[t] = checked((int)(t / rs * planes.ChannelStride)) + planes.TapOffset[t % rs];

        int cols = planes.ColsPerImage;
        // Tasks are (group, image, column chunk[, row block]); chunks are only multiplied for
        // the threads when there are fewer (group, image) pairs than threads.
        long work = (long)kg * cols * taps * g.Groups * g.N;
        if (work < CpuGemm.SerialWork) threads = 1;
        int threadsPerImage = (threads + g.N * g.Groups - 1) / (g.N * g.Groups);
        var (chunks, rowBlocks) = CpuGemm.Plan<T>(isa, kg, cols, work, threadsPerImage);
        int perImage = chunks * rowBlocks;
        nint yp = (nint)y, wpp = (nint)wp, top = (nint)tapOff;
        CpuGemm.RunTasks(g.Groups * g.N * perImage, threads, (t, s) =>
        {
            int gi = t / (g.N * perImage), n = t / perImage % g.N, ci = t % perImage / rowBlocks, mi = t % rowBlocks;
            var (j0, j1) = CpuGemm.ChunkRange(cols, NR, chunks, ci);
            var (m0, m1) = CpuGemm.RowRange(kg, MR, rowBlocks, mi);
            int nc = j1 - j0;
            if (nc <= 0 || m1 <= m0) return;
            T* cb = s.Get<T>(CpuScratch.SlotC, (long)(m1 - m0) * nc);
            T* tile = s.Get<T>(CpuScratch.SlotA, (long)MR * NR);
            T* bBase = planes.Base + n * planes.ImageStride + (long)gi * g.Cg * planes.ChannelStride + j0;
            var pa = new PrepackedA<T>((T*)wpp + gi * packedPerGroup, mPad);
            for (int pc = 0; pc < taps; pc += KCb)
            {
                int kc = Math.Min(KCb, taps - pc);
                bool first = pc == 0;
                // Slivers outside, panels inside: a sliver's shifted rows (a few plane rows per
                // channel) stay in L1 while the packed weight panels stream from L2.
                for (int jj = 0; jj < nc; jj += NR)
                    for (int i0 = m0; i0 < m1; i0 += MR)
                    {
                        int mr = Math.Min(MR, m1 - i0);
                        T* ap = pa.Panel(pc, kc, i0, mr, MR, null);
                        GemmKernels.Run(isa, kc, ap, bBase + jj, (int*)top + pc, cb + (long)(i0 - m0) * nc + jj, nc, mr, Math.Min(NR, nc - jj),
                            T.One, first ? T.Zero : T.One, first, tile);
                    }
            }
            DropGarbageColumns((T*)yp, cb, nc, g, planes.Width, n, gi, m0, m1, j0, epi.ForGroup(gi, kg));
        });
    }

    /// <summary>Copies the valid columns (q &lt; Q) of a shift-GEMM block into the NCHW output through the epilogue.</summary>
    private static void DropGarbageColumns<T>(T* y, T* cb, int ld, in ConvGeom g, int width, int n, int gi, int m0, int m1, int j0, in ConvEpilogue<T> epi)
        where T : unmanaged, INumber<T>
    {
        int j1 = j0 + ld;
        for (int p = j0 / width; p * width < j1; p++)
        {
            int q0 = Math.Max(0, j0 - p * width), q1 = Math.Min(g.Q, j1 - p * width);
            if (q1 <= q0) continue;
            for (int k = m0; k < m1; k++)
            {
                T* src = cb + (long)(k - m0) * ld + (p * width + q0 - j0);
                T* dst = y + (((long)n * g.K + gi * g.Kg + k) * g.P + p) * g.Q + q0;
                if (epi.IsNone) VecCopy.Copy(dst, src, q1 - q0);
                else epi.Apply(dst, src, q1 - q0, k);
            }
        }
    }
}

internal static unsafe partial class CpuConv
{
    /// <summary>
    /// Filter gradient through shift planes: dW[k, tap] = sum over images and columns j of
    /// dY'[n, k, j] * plane[TapOffset(tap) + j], where dY' is dY spread to rows of Width with zeros
    /// in the garbage columns (so they add nothing). dW must already be zero.
    /// </summary>
    private static void BackwardFilterShift<T>(T* dw, T* dy, T* x, ConvGeom g, int threads) where T : unmanaged, INumber<T>
    {
        var isa = CpuGemm.Isa;
        var (DMR, DNR) = DotKernels.TileShape(isa);
        const int align = DotKernels.KAlign;
        int kg = g.Kg, taps = g.Taps, rs = g.R * g.S;
        if ((long)kg * taps * g.Groups * g.Cols < CpuGemm.SerialWork) threads = 1;
        using var own = CpuWorkspace.Begin();
        var planes = ShiftPlanes<T>.Fill(x, g, own, threads);
        int width = planes.Width, cols = planes.ColsPerImage;
        int colsPad = (cols + align - 1) / align * align;
        T* dyw = own.Get<T>((long)g.N * g.K * colsPad);
        nint dyp = (nint)dy, dywp = (nint)dyw, dwp = (nint)dw;
        CpuGemm.RunTasks(g.N * g.K, threads, (t, _) =>
        {
            T* src = (T*)dyp + (long)t * g.PQ;
            T* dst = (T*)dywp + (long)t * colsPad;
            for (int p = 0; p < g.P; p++)
            {
                VecCopy.Copy(dst + p * width, src + p * g.Q, g.Q);
                VecCopy.Zero(dst + p * width + g.Q, width - g.Q);
            }
            VecCopy.Zero(dst + cols, colsPad - cols);
        });

        int chunks = (colsPad + ChunkBytes / sizeof(T) - 1) / (ChunkBytes / sizeof(T));
        int chunkLen = (colsPad / chunks + align - 1) / align * align;
        int kBlock = Math.Max(DMR, DyBlockBytes / (chunkLen * sizeof(T)) / DMR * DMR);
        int tiles = (taps + DNR - 1) / DNR;
        // Two tasks per thread (when the taps allow) so that a descheduled thread can be covered.
        int parts = g.Groups >= 2 * threads ? 1 : Math.Min(tiles, (2 * threads + g.Groups - 1) / g.Groups);
        CpuGemm.RunTasks(g.Groups * parts, threads, (t, s) =>
        {
            int gi = t / parts, part = t % parts;
            int t0 = CpuGemm.Split(tiles, parts, part) * DNR, t1 = Math.Min(taps, CpuGemm.Split(tiles, parts, part + 1) * DNR);
            if (t1 <= t0) return;
            // Offsets of this task's taps from the image base; the tail repeats the last tap so that
            // a partial tile still reads valid memory.
            int* off = (int*)s.Get<int>(CpuScratch.SlotB, t1 - t0 + DNR);
            for (int u = t0; u < t1 + DNR; u++)
            {
                int tap = Math.Min(u, t1 - 1);
                off[u - t0] = checked((int)((gi * g.Cg + tap / rs) * planes.ChannelStride)) + planes.TapOffset[tap % rs];
            }
            T* dwg = (T*)dwp + (long)gi * kg * taps;
            for (int n = 0; n < g.N; n++)
                for (int j0 = 0; j0 < colsPad; j0 += chunkLen)
                {
                    int len = Math.Min(chunkLen, colsPad - j0);
                    T* a = (T*)dywp + ((long)n * g.K + gi * kg) * colsPad + j0;
                    T* bBase = planes.Base + n * planes.ImageStride + j0;
                    for (int k0 = 0; k0 < kg; k0 += kBlock)
                    {
                        int k1 = Math.Min(kg, k0 + kBlock);
                        for (int j = t0; j < t1; j += DNR)
                        {
                            int nr = Math.Min(DNR, t1 - j);
                            for (int i = k0; i < k1; i += DMR)
                                DotKernels.Run(isa, len, a + (long)i * colsPad, colsPad, bBase, off + (j - t0), dwg + (long)i * taps + j, taps,
                                    Math.Min(DMR, k1 - i), nr);
                        }
                    }
                }
        });
    }
}
