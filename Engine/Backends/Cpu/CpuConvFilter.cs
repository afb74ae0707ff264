// Filter and bias gradients of the CPU convolution.
// dW_g (K/groups x taps) = sum over the batch of dY_g (K/groups x pixels) col_g^T. Both operands
// are contiguous along the pixels, the reduction dimension, so this uses the inner-product
// kernels (CpuDotKernels.cs) on blocks of im2col rows, with no transposes. Tasks own disjoint
// ranges of taps (columns of dW), so they never write the same element and need no reduction;
// each walks the whole batch in column chunks, building only its own rows of the column matrix.
using System.Numerics;
using System.Numerics.Tensors;

namespace ResidualEngine.Backends.Cpu;

internal static unsafe partial class CpuConv
{
    /// <summary>Rows of the column matrix built at a time (a multiple of every dot-kernel NR).</summary>
    private const int TapBlock = 96;

    /// <summary>Target bytes of one pixel chunk of a row: long enough to amortise the kernels' final reductions.</summary>
    private const int ChunkBytes = 4096;

    /// <summary>Target bytes of the block of dY rows swept per column tile (kept in L2).</summary>
    private const int DyBlockBytes = 256 * 1024;

    public static void BackwardFilter<T>(T* dw, T* dy, T* x, ConvGeom g, int threads) where T : unmanaged, INumber<T>
    {
        int kg = g.Kg, taps = g.Taps, pq = g.PQ;
        new Span<T>(dw, checked(g.K * taps)).Clear();
        long cols = g.Cols;
        if (cols == 0 || kg == 0 || taps == 0) return;
        if (ShiftPlanes<T>.Suits(g))
        {
            BackwardFilterShift(dw, dy, x, g, threads);
            return;
        }
        if (cols < ShortReduction)
        {
            BackwardFilterGemm(dw, dy, x, g, threads);
            return;
        }
        var isa = CpuGemm.Isa;
        var (DMR, DNR) = DotKernels.TileShape(isa);
        const int align = DotKernels.KAlign;
        int chunk = ChunkBytes / sizeof(T);
        // Large images are cut into even chunks inside each image (so dY can be read in place when
        // a chunk is a multiple of the alignment); small images are batched together so that the
        // chunks stay long, with dY gathered.
        bool perImage = pq >= chunk;
        int chunksPerImage = perImage ? (pq + chunk - 1) / chunk : 0;
        int perImageLen = perImage ? (pq / chunksPerImage + align - 1) / align * align : 0;
        int maxLen = perImage ? perImageLen : chunk;
        long nChunks = perImage ? (long)g.N * chunksPerImage : (cols + chunk - 1) / chunk;
        int ldMax = (maxLen + align - 1) / align * align;
        int kBlock = Math.Max(DMR, DyBlockBytes / (ldMax * sizeof(T)) / DMR * DMR);

        long work = cols * kg * taps * g.Groups;
        if (work < CpuGemm.SerialWork) threads = 1;
        int tiles = (taps + DNR - 1) / DNR;
        // Two tasks per thread (when the taps allow) so that a descheduled thread can be covered.
        int parts = g.Groups >= 2 * threads ? 1 : Math.Min(tiles, (2 * threads + g.Groups - 1) / g.Groups);
        using var own = CpuWorkspace.Begin();
        var planes = g.Strided
            ? ConvPlanes<T>.Split(x, own.Get<T>(ConvPlanes<T>.SplitSize(g)), g, threads)
            : ConvPlanes<T>.SuitsPadding(g) ? ConvPlanes<T>.Pad(x, own.Get<T>(ConvPlanes<T>.PadSize(g)), g, threads)
            : ConvPlanes<T>.Direct(x, g);
        nint dwp = (nint)dw, dyp = (nint)dy;
        CpuGemm.RunTasks(g.Groups * parts, threads, (t, s) =>
        {
            int gi = t / parts, part = t % parts;
            int t0 = CpuGemm.Split(tiles, parts, part) * DNR, t1 = Math.Min(taps, CpuGemm.Split(tiles, parts, part + 1) * DNR);
            if (t1 <= t0) return;
            T* colBuf = s.Get<T>(CpuScratch.SlotB, (long)TapBlock * ldMax);
            T* dyBuf = s.Get<T>(CpuScratch.SlotC, (long)kg * ldMax);
            T* dwg = (T*)dwp + (long)gi * kg * taps;
            int* rowOff = stackalloc int[DNR];
            for (long ci = 0; ci < nChunks; ci++)
            {
                long j0;
                int len;
                if (perImage)
                {
                    long n = ci / chunksPerImage;
                    int at = (int)(ci % chunksPerImage) * perImageLen;
                    j0 = n * pq + at;
                    len = Math.Min(perImageLen, pq - at);
                }
                else
                {
                    j0 = ci * chunk;
                    len = (int)Math.Min(chunk, cols - j0);
                }
                if (len <= 0) continue;
                int ld = (len + align - 1) / align * align;
                T* a;
                int lda;
                if (perImage && ld == len)
                {
                    long n = j0 / pq;
                    a = (T*)dyp + (n * g.K + gi * kg) * pq + (j0 - n * pq);
                    lda = pq;
                }
                else
                {
                    GatherRows((T*)dyp, dyBuf, ld, g, gi, j0, len);
                    a = dyBuf;
                    lda = ld;
                }
                for (int u = 0; u < DNR; u++) rowOff[u] = u * ld;
                for (int b0 = t0; b0 < t1; b0 += TapBlock)
                {
                    int b1 = Math.Min(t1, b0 + TapBlock);
                    Im2Col.Rows(colBuf, ld, planes, g, gi, b0, b1, j0, len);
                    // dY rows in L2-sized blocks; each tile of column-matrix rows stays in L1 across a block.
                    for (int k0 = 0; k0 < kg; k0 += kBlock)
                    {
                        int k1 = Math.Min(kg, k0 + kBlock);
                        for (int j = b0; j < b1; j += DNR)
                        {
                            T* bj = colBuf + (long)(j - b0) * ld;
                            int nr = Math.Min(DNR, b1 - j);
                            for (int i = k0; i < k1; i += DMR)
                                DotKernels.Run(isa, ld, a + (long)i * lda, lda, bj, rowOff, dwg + (long)i * taps + j, taps, Math.Min(DMR, k1 - i), nr);
                        }
                    }
                }
            }
        });
    }

    /// <summary>Below this many output pixels in the batch the dot kernels' reductions cost more than
    /// their products, so the filter gradient goes through the outer-product GEMM instead.</summary>
    private const int ShortReduction = 512;

    /// <summary>
    /// Filter gradient for small batches of small images: the whole column matrix and dY are
    /// built densely and dW_g = dY_g col_g^T is one GEMM with a reduction of only N * P * Q.
    /// </summary>
    private static void BackwardFilterGemm<T>(T* dw, T* dy, T* x, ConvGeom g, int threads) where T : unmanaged, INumber<T>
    {
        int cols = (int)g.Cols, kg = g.Kg, taps = g.Taps;
        using var ws = CpuWorkspace.Begin();
        var planes = g.Strided ? ConvPlanes<T>.Split(x, ws.Get<T>(ConvPlanes<T>.SplitSize(g)), g, threads) : ConvPlanes<T>.Direct(x, g);
        T* colBuf = ws.Get<T>((long)taps * cols);
        T* dyBuf = ws.Get<T>((long)kg * cols);
        nint cp = (nint)colBuf;
        const int rowsPerTask = 64;
        for (int gi = 0; gi < g.Groups; gi++)
        {
            int group = gi;
            CpuGemm.RunTasks((taps + rowsPerTask - 1) / rowsPerTask, (long)taps * cols < 1 << 16 ? 1 : threads, (t, _) =>
            {
                int r0 = t * rowsPerTask, r1 = Math.Min(taps, r0 + rowsPerTask);
                Im2Col.Rows((T*)cp + (long)r0 * cols, cols, planes, g, group, r0, r1, 0, cols);
            });
            GatherRows(dy, dyBuf, cols, g, gi, 0, cols);
            CpuGemm.Gemm(kg, taps, cols, dyBuf, cols, false, colBuf, cols, true, dw + (long)gi * kg * taps, taps, T.One, T.Zero, threads);
        }
    }

    /// <summary>Copies dY_g's columns [j0, j0 + len) (across images) into a dense K/groups x ld buffer, zero-padded.</summary>
    private static void GatherRows<T>(T* dy, T* dst, int ld, in ConvGeom g, int gi, long j0, int len) where T : unmanaged
    {
        int pq = g.PQ;
        for (int k = 0; k < g.Kg; k++)
        {
            T* d = dst + (long)k * ld;
            int off = 0;
            long j = j0;
            while (off < len)
            {
                int n = (int)(j / pq), at = (int)(j % pq);
                int l = Math.Min(len - off, pq - at);
                new ReadOnlySpan<T>(dy + ((long)n * g.K + gi * g.Kg + k) * pq + at, l).CopyTo(new Span<T>(d + off, l));
                off += l;
                j += l;
            }
            if (ld > len) new Span<T>(d + len, ld - len).Clear();
        }
    }

    /// <summary>dB[k] = sum over images and pixels of dY[n, k]; F32 sums per plane are accumulated in double.</summary>
    public static void BackwardBias<T>(T* db, T* dy, int n, int k, int pq) where T : unmanaged, INumber<T>
    {
        for (int c = 0; c < k; c++)
        {
            double acc = 0;
            for (int i = 0; i < n; i++)
                acc += double.CreateTruncating(TensorPrimitives.Sum(new ReadOnlySpan<T>(dy + ((long)i * k + c) * pq, pq)));
            db[c] = T.CreateTruncating(acc);
        }
    }
}
