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

    /// <summary>Elements for the planes of <paramref name="channels"/> channels of one image, plus the slack.</summary>
    public long ImageAllocSize(int channels) => ChannelStride * channels + Slack;

    /// <summary>Fills the planes of channels [c0, c0 + count) of image n of x into dst (channel c0 first) and zeroes
    /// the slack after them; <paramref name="tmp"/> holds W + 64 elements.</summary>
    public void FillImage(T* x, int n, int c0, int count, T* dst, T* tmp)
    {
        var g = _g;
        for (int c = 0; c < count; c++) FillPlane(x + ((long)n * g.C + c0 + c) * g.HW, dst + c * ChannelStride, tmp);
        VecCopy.Zero(dst + count * ChannelStride, (int)Slack);
    }

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
    /// <summary>Forward convolution through shift planes; see the file comment. Same contract as Forward.
    /// With at least as many (group, image) pairs as threads, each task fills the planes of its own image
    /// into its scratch (they are then hot in L2 for the GEMM, and no batch-sized workspace is held);
    /// otherwise the planes of the whole batch are filled first and tasks also split columns and rows.</summary>
    private static void ForwardShift<T>(T* y, T* x, T* w, ConvGeom g, int threads, ConvEpilogue<T> epi, bool flippedWeights, T* prepacked)
        where T : unmanaged, INumber<T>
    {
        var isa = CpuGemm.Isa;
        var (MR, NR) = GemmKernels.TileShape<T>(isa);
        int kg = g.Kg, taps = g.Taps, rs = g.R * g.S;
        using var own = CpuWorkspace.Begin();
        var layout = new ShiftPlanes<T>(null, g);
        int cols = layout.ColsPerImage;
        long work = (long)kg * cols * taps * g.Groups * g.N;
        if (work < CpuGemm.SerialWork) threads = 1;
        bool perImage = g.N * g.Groups >= threads;
        var planes = perImage ? layout : ShiftPlanes<T>.Fill(x, g, own, threads);
        int mPad = CpuGemm.PrepackSize<T>(isa, kg);
        long packedPerGroup = (long)mPad * taps;
        T* wp = prepacked != null ? prepacked : own.Get<T>(packedPerGroup * g.Groups);
        if (prepacked == null) PackWeights(isa, w, g, flippedWeights, wp, threads);
        // Offsets of every tap of a group from its first channel's plane base.
        int* tapOff = (int*)own.Get<int>(taps);
        for (int t = 0; t < taps; t++) tapOff[t] = checked((int)(t / rs * layout.ChannelStride)) + layout.TapOffset[t % rs];

        // Tasks are (group, image[, column chunk, row block]); chunks are only multiplied for
        // the threads when there are fewer (group, image) pairs than threads.
        int threadsPerImage = perImage ? 1 : (threads + g.N * g.Groups - 1) / (g.N * g.Groups);
        var (chunks, rowBlocks) = CpuGemm.Plan<T>(isa, kg, cols, work, threadsPerImage);
        int perTask = perImage ? 1 : chunks * rowBlocks;
        nint yp = (nint)y, xp = (nint)x, wpp = (nint)wp, top = (nint)tapOff;
        CpuGemm.RunTasks(g.Groups * g.N * perTask, threads, (t, s) =>
        {
            int gi = t / (g.N * perTask), n = t / perTask % g.N;
            T* imageBase;
            if (perImage)
            {
                imageBase = s.Get<T>(CpuScratch.SlotD, layout.ImageAllocSize(g.Cg));
                layout.FillImage((T*)xp, n, gi * g.Cg, g.Cg, imageBase, s.Get<T>(CpuScratch.SlotB, g.W + 64));
            }
            else imageBase = planes.Base + n * planes.ImageStride + (long)gi * g.Cg * planes.ChannelStride;
            var pa = new PrepackedA<T>((T*)wpp + gi * packedPerGroup, mPad);
            var ge = epi.ForGroup(gi, kg);
            int c0 = perImage ? 0 : t % perTask / rowBlocks, c1 = perImage ? chunks : c0 + 1;
            int mi = perImage ? 0 : t % rowBlocks, blocks = perImage ? 1 : rowBlocks;
            for (int ci = c0; ci < c1; ci++)
                ShiftChunk(isa, (T*)yp, imageBase, pa, (int*)top, g, cols, chunks, ci, blocks, mi, layout.Width, n, gi, ge, s);
        });
    }

    /// <summary>One (column chunk, row block) of an image's shift GEMM, then its valid columns into y through the epilogue.</summary>
    private static void ShiftChunk<T>(GemmIsa isa, T* y, T* imageBase, in PrepackedA<T> pa, int* tapOff, in ConvGeom g, int cols, int chunks, int ci,
        int rowBlocks, int mi, int width, int n, int gi, in ConvEpilogue<T> epi, CpuScratch s) where T : unmanaged, INumber<T>
    {
        var (MR, NR) = GemmKernels.TileShape<T>(isa);
        int kg = g.Kg, taps = g.Taps;
        int KCb = CpuGemm.KC<T>(taps);
        var (j0, j1) = CpuGemm.ChunkRange(cols, NR, chunks, ci);
        var (m0, m1) = CpuGemm.RowRange(kg, MR, rowBlocks, mi);
        int nc = j1 - j0;
        if (nc <= 0 || m1 <= m0) return;
        T* cb = s.Get<T>(CpuScratch.SlotC, (long)(m1 - m0) * nc);
        T* tile = s.Get<T>(CpuScratch.SlotA, (long)MR * NR);
        T* bBase = imageBase + j0;
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
                    GemmKernels.Run(isa, kc, ap, bBase + jj, tapOff + pc, cb + (long)(i0 - m0) * nc + jj, nc, mr, Math.Min(NR, nc - jj),
                        T.One, first ? T.Zero : T.One, first, tile);
                }
        }
        DropGarbageColumns(y, cb, nc, g, width, n, gi, m0, m1, j0, epi);
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
    /// <summary>Image blocks of the shift filter gradient: a fixed count (not the thread count), so that the
    /// partial sums add up in the same order on any number of threads.</summary>
    private const int FilterImageBlocks = 8;

    /// <summary>
    /// Filter gradient through shift planes: dW[k, tap] = sum over images and columns j of
    /// dY'[n, k, j] * plane[TapOffset(tap) + j], where dY' is dY spread to rows of Width with zeros
    /// in the garbage columns (so they add nothing). Tasks are (group, block of images): each fills
    /// its images' planes and spreads their dY once, for all taps, into a partial dW of its own;
    /// the partials are then added in block order. (Splitting the taps instead made every task
    /// spread the whole of dY again.) dW must already be zero.
    /// </summary>
    private static void BackwardFilterShift<T>(T* dw, T* dy, T* x, ConvGeom g, int threads) where T : unmanaged, INumber<T>
    {
        var isa = CpuGemm.Isa;
        var (DMR, DNR) = DotKernels.TileShape(isa);
        const int align = DotKernels.KAlign;
        int kg = g.Kg, taps = g.Taps, rs = g.R * g.S;
        if ((long)kg * taps * g.Groups * g.Cols < CpuGemm.SerialWork) threads = 1;
        var layout = new ShiftPlanes<T>(null, g);
        int width = layout.Width, cols = layout.ColsPerImage;
        int colsPad = (cols + align - 1) / align * align;
        int chunks = (colsPad + ChunkBytes / sizeof(T) - 1) / (ChunkBytes / sizeof(T));
        int chunkLen = (colsPad / chunks + align - 1) / align * align;
        int kBlock = Math.Max(DMR, DyBlockBytes / (chunkLen * sizeof(T)) / DMR * DMR);
        int blocks = Math.Min(g.N, FilterImageBlocks);
        long dwSize = (long)g.K * taps;
        using var own = CpuWorkspace.Begin();
        T* partial = blocks == 1 ? dw : own.Get<T>(blocks * dwSize);
        nint dyp = (nint)dy, xp = (nint)x, pp = (nint)partial;
        CpuGemm.RunTasks(g.Groups * blocks, threads, (t, s) =>
        {
            int gi = t / blocks, b = t % blocks;
            int n0 = CpuGemm.Split(g.N, blocks, b), n1 = CpuGemm.Split(g.N, blocks, b + 1);
            T* dwg = (T*)pp + b * dwSize + (long)gi * kg * taps;
            new Span<T>(dwg, checked(kg * taps)).Clear();
            // Offsets of every tap of the group from its first channel's planes; the tail repeats the last
            // tap so that a partial tile still reads valid memory.
            int* off = (int*)s.Get<int>(CpuScratch.SlotB, taps + DNR);
            for (int u = 0; u < taps + DNR; u++)
            {
                int tap = Math.Min(u, taps - 1);
                off[u] = checked((int)(tap / rs * layout.ChannelStride)) + layout.TapOffset[tap % rs];
            }
            T* planes = s.Get<T>(CpuScratch.SlotD, layout.ImageAllocSize(g.Cg));
            T* tmp = s.Get<T>(CpuScratch.SlotA, g.W + 64);
            T* dyn = s.Get<T>(CpuScratch.SlotC, (long)kg * colsPad);
            for (int n = n0; n < n1; n++)
            {
                layout.FillImage((T*)xp, n, gi * g.Cg, g.Cg, planes, tmp);
                // dY rows of this group, spread to rows of Width with zeros in the garbage columns (they add nothing).
                for (int k = 0; k < kg; k++)
                {
                    T* src = (T*)dyp + ((long)n * g.K + gi * kg + k) * g.PQ;
                    T* dst = dyn + (long)k * colsPad;
                    for (int p = 0; p < g.P; p++)
                    {
                        VecCopy.Copy(dst + p * width, src + p * g.Q, g.Q);
                        VecCopy.Zero(dst + p * width + g.Q, width - g.Q);
                    }
                    VecCopy.Zero(dst + cols, colsPad - cols);
                }
                for (int j0 = 0; j0 < colsPad; j0 += chunkLen)
                {
                    int len = Math.Min(chunkLen, colsPad - j0);
                    T* a = dyn + j0;
                    T* bBase = planes + j0;
                    for (int k0 = 0; k0 < kg; k0 += kBlock)
                    {
                        int k1 = Math.Min(kg, k0 + kBlock);
                        for (int j = 0; j < taps; j += DNR)
                        {
                            int nr = Math.Min(DNR, taps - j);
                            for (int i = k0; i < k1; i += DMR)
                                DotKernels.Run(isa, len, a + (long)i * colsPad, colsPad, bBase, off + j, dwg + (long)i * taps + j, taps,
                                    Math.Min(DMR, k1 - i), nr);
                        }
                    }
                }
            }
        });
        if (blocks > 1) SumBlocks(dw, partial, blocks, dwSize, threads);
    }

    /// <summary>dw = the sum of <paramref name="blocks"/> consecutive arrays of <paramref name="size"/> elements, added in order.</summary>
    private static void SumBlocks<T>(T* dw, T* partial, int blocks, long size, int threads) where T : unmanaged, INumber<T>
    {
        const int chunk = 4096;
        int tasks = checked((int)((size + chunk - 1) / chunk));
        nint dp = (nint)dw, pp = (nint)partial;
        CpuGemm.RunTasks(tasks, size * blocks < CpuGemm.SerialWork ? 1 : threads, (t, _) =>
        {
            long i0 = (long)t * chunk;
            int len = (int)Math.Min(chunk, size - i0);
            T* d = (T*)dp + i0;
            VecCopy.Copy(d, (T*)pp + i0, len);
            for (int b = 1; b < blocks; b++) VecCopy.Add(d, (T*)pp + b * size + i0, len);
        });
    }
}
