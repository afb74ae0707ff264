// Convolution on the CPU, NCHW, F32 and F64, with groups, stride, padding and dilation.
// Every pass is a GEMM per group over the "column matrix" (CpuIm2Col.cs), never materialised:
//  - Forward: Y_g (K/groups x pixels) = W_g (K/groups x taps) col_g, with the weights packed once
//    per call. Wide outputs (Q >= 16) read the column matrix as shifted rows of padded phase
//    planes with no packing (CpuConvShift.cs); narrow ones pack GEMM slivers from the image
//    (implicit im2col), batching images so that the GEMM stays wide.
//  - Backward data: with stride 1 it is the forward convolution of dY with the flipped,
//    transposed weights (padding dil*(R-1) - pad), so it runs at forward speed; otherwise
//    dcol = W_g^T dY_g by GEMM, added onto the stride phases of dX and interleaved back (col2im).
//  - Filter and bias gradients: CpuConvFilter.cs (and the shift variant in CpuConvShift.cs).
// Tasks split columns (pixels) and never write the same output, so no locks or reductions.
using System.Numerics;

namespace ResidualEngine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void ConvForward(Tensor y, Tensor x, Tensor w, Tensor? bias, Conv2dParams p)
    {
        if (RunCanonical("oiii", true, t => ConvForward(t[0]!, t[1]!, t[2]!, t[3], p), y, x, w, bias)) return; // 16-bit / NHWC: CpuMixed.cs
        CheckConvOperands("ConvForward", y, x, w, bias);
        var g = ConvGeom.Of(y, x, w, p);
        if (x.DType == DType.F32)
            CpuConv.Forward((float*)y.Pointer, (float*)x.Pointer, (float*)w.Pointer, bias is null ? null : (float*)bias.Pointer, g, Threads);
        else
            CpuConv.Forward((double*)y.Pointer, (double*)x.Pointer, (double*)w.Pointer, bias is null ? null : (double*)bias.Pointer, g, Threads);
    }

    public void ConvBackwardData(Tensor dX, Tensor dY, Tensor w, Conv2dParams p)
    {
        if (RunCanonical("oii", true, t => ConvBackwardData(t[0]!, t[1]!, t[2]!, p), dX, dY, w)) return;
        CheckConvOperands("ConvBackwardData", dY, dX, w, null);
        var g = ConvGeom.Of(dY, dX, w, p);
        if (dX.DType == DType.F32) CpuConv.BackwardData((float*)dX.Pointer, (float*)dY.Pointer, (float*)w.Pointer, g, Threads);
        else CpuConv.BackwardData((double*)dX.Pointer, (double*)dY.Pointer, (double*)w.Pointer, g, Threads);
    }

    public void ConvBackwardFilter(Tensor dW, Tensor dY, Tensor x, Conv2dParams p)
    {
        if (RunCanonical("oii", true, t => ConvBackwardFilter(t[0]!, t[1]!, t[2]!, p), dW, dY, x)) return;
        CheckConvOperands("ConvBackwardFilter", dY, x, dW, null);
        var g = ConvGeom.Of(dY, x, dW, p);
        if (dW.DType == DType.F32) CpuConv.BackwardFilter((float*)dW.Pointer, (float*)dY.Pointer, (float*)x.Pointer, g, Threads);
        else CpuConv.BackwardFilter((double*)dW.Pointer, (double*)dY.Pointer, (double*)x.Pointer, g, Threads);
    }

    /// <summary>The backend's own guard: the op validates arguments, but the backend may be called directly.</summary>
    private static void CheckConvOperands(string op, Tensor y, Tensor x, Tensor w, Tensor? bias)
    {
        RequireFloat(x, op);
        foreach (var t in new[] { y, x, w })
        {
            if (t.Rank != 4) throw new ArgumentException($"{op}: expected 4-d tensors, got {t.Describe()}");
            if (t.Format != MemoryFormat.Contiguous) throw new NotSupportedException($"{op}: {t.Describe()} is channels-last; the CPU backend supports NCHW only");
            if (t.DType != x.DType) throw new ArgumentException($"{op}: {t.Describe()} and {x.Describe()} differ in dtype");
        }
        if (bias is not null && (bias.Numel != w.Shape[0] || bias.DType != x.DType))
            throw new ArgumentException($"{op}: bias {bias.Describe()} does not match {w.Shape[0]} output channels");
    }
}

internal static unsafe partial class CpuConv
{
    /// <param name="flippedWeights">w holds the weights of the convolution this one is the backward data
    /// of, (C, K/groups, R, S) for this geometry: use them transposed with the taps flipped.</param>
    public static void Forward<T>(T* y, T* x, T* w, T* bias, ConvGeom g, int threads, bool flippedWeights = false) where T : unmanaged, INumber<T> =>
        Forward(y, x, w, g, threads, new ConvEpilogue<T>(y, bias, null, false), flippedWeights, null);

    /// <summary>
    /// y = epilogue(conv(x, w)). <paramref name="prepacked"/>: the weights already packed by PackWeights
    /// for this geometry and the current ISA (w is then not read).
    /// </summary>
    public static void Forward<T>(T* y, T* x, T* w, ConvGeom g, int threads, ConvEpilogue<T> epi, bool flippedWeights, T* prepacked)
        where T : unmanaged, INumber<T>
    {
        if (g.Cols == 0 || g.Kg == 0) return;
        if (g.R == 1 && g.S == 1 && g.PadH == 0 && g.PadW == 0)
        {
            // 1x1: a GEMM on the activation itself (stride 2 after a gather of the pixels it reads).
            if (g.Strided) { ForwardStrided1x1(y, x, w, g, threads, epi, flippedWeights, prepacked); return; }
            if (Direct1x1<T>.Suits(g)) { Forward1x1(y, x, w, g, threads, epi, flippedWeights, prepacked); return; }
        }
        if (ShiftPlanes<T>.Suits(g))
        {
            ForwardShift(y, x, w, g, threads, epi, flippedWeights, prepacked);
            return;
        }
        var isa = CpuGemm.Isa;
        var (MR, NR) = GemmKernels.TileShape<T>(isa);
        int kg = g.Kg, taps = g.Taps, pq = g.PQ;
        int cols = checked((int)g.Cols);
        int mPad = CpuGemm.PrepackSize<T>(isa, kg);
        long packedPerGroup = (long)mPad * taps;
        int KCb = CpuGemm.KC<T>(taps);
        using var own = CpuWorkspace.Begin();
        T* wp = prepacked != null ? prepacked : own.Get<T>(packedPerGroup * g.Groups);
        var planes = g.Strided
            ? ConvPlanes<T>.Split(x, own.Get<T>(ConvPlanes<T>.SplitSize(g)), g, threads)
            : ConvPlanes<T>.SuitsPadding(g) ? ConvPlanes<T>.Pad(x, own.Get<T>(ConvPlanes<T>.PadSize(g)), g, threads)
            : ConvPlanes<T>.Direct(x, g);
        if (prepacked == null) PackWeights(isa, w, g, flippedWeights, wp, threads);
        long work = (long)kg * cols * taps * g.Groups;
        var (chunks, rowBlocks) = CpuGemm.Plan<T>(isa, kg, cols, work, threads);
        int perGroup = chunks * rowBlocks;
        nint yp = (nint)y, wpp = (nint)wp;
        CpuGemm.RunTasks(perGroup * g.Groups, threads, (t, s) =>
        {
            int gi = t / perGroup, ci = t % perGroup / rowBlocks, mi = t % rowBlocks;
            var (j0, j1) = CpuGemm.ChunkRange(cols, NR, chunks, ci);
            var (m0, m1) = CpuGemm.RowRange(kg, MR, rowBlocks, mi);
            int nc = j1 - j0;
            if (nc <= 0 || m1 <= m0) return;
            T* bufB = s.Get<T>(CpuScratch.SlotB, (long)KCb * ((nc + NR - 1) / NR * NR) + Im2ColB<T>.Slack);
            var pa = new PrepackedA<T>((T*)wpp + gi * packedPerGroup, mPad);
            var pb = new Im2ColB<T>(planes, g, gi);
            var ge = epi.ForGroup(gi, kg);
            int n = j0 / pq;
            T* yt = (T*)yp;
            if ((j1 - 1) / pq == n)
            {
                // The chunk lies inside one image: write the output in place, the epilogue tile by tile.
                T* c = yt + ((long)n * g.K + gi * kg) * pq + (j0 - (long)n * pq);
                CpuGemm.Block(isa, pa, pb, m0, m1, j0, nc, taps, c, pq, T.One, T.Zero, null, bufB, ge);
            }
            else
            {
                T* cb = s.Get<T>(CpuScratch.SlotC, (long)(m1 - m0) * nc);
                CpuGemm.Block(isa, pa, pb, m0, m1, j0, nc, taps, cb - (long)m0 * nc, nc, T.One, T.Zero, null, bufB);
                ScatterColumns(yt, cb, nc, g, gi, m0, m1, j0, nc, ge);
            }
        });
    }

    /// <summary>Packs w (K, C/groups, R, S) once, as the forward pass would, for Forward's prepacked argument.</summary>
    internal static void PackWeightsFor<T>(GemmIsa isa, T* w, in ConvGeom g, T* dst, int threads) where T : unmanaged, INumber<T> =>
        PackWeights(isa, w, g, false, dst, threads);

    /// <summary>Packs every group's W_g (K/groups x taps) for the forward GEMM; see Forward for flippedWeights.</summary>
    private static void PackWeights<T>(GemmIsa isa, T* w, in ConvGeom g, bool flippedWeights, T* dst, int threads) where T : unmanaged, INumber<T>
    {
        nint wp = (nint)w;
        int kg = g.Kg, taps = g.Taps, rs = g.R * g.S;
        if (flippedWeights)
            // The original weights of group g are (Cg of this geometry = its K/groups) x Kg x R x S.
            CpuGemm.PrepackGroups(isa, gi => new FlippedWeightsA<T>((T*)wp + (long)gi * kg * taps, kg, rs), g.Groups, kg, taps, dst, threads);
        else
            CpuGemm.PrepackGroups(isa, gi => new DenseA<T>((T*)wp + (long)gi * kg * taps, taps, false), g.Groups, kg, taps, dst, threads);
    }

    /// <summary>Copies rows [m0, m1) of a (K/groups x columns) block into the NCHW output through the epilogue.</summary>
    private static void ScatterColumns<T>(T* y, T* cb, int ld, in ConvGeom g, int gi, int m0, int m1, long j0, int count, in ConvEpilogue<T> epi)
        where T : unmanaged, INumber<T>
    {
        int pq = g.PQ;
        int off = 0;
        long j = j0;
        while (off < count)
        {
            int n = (int)(j / pq), at = (int)(j % pq);
            int len = Math.Min(count - off, pq - at);
            for (int k = m0; k < m1; k++)
            {
                T* src = cb + (long)(k - m0) * ld + off;
                T* dst = y + ((long)n * g.K + gi * g.Kg + k) * pq + at;
                if (epi.IsNone) VecCopy.Copy(dst, src, len);
                else epi.Apply(dst, src, len, k);
            }
            off += len;
            j += len;
        }
    }

    public static void BackwardData<T>(T* dx, T* dy, T* w, ConvGeom g, int threads) where T : unmanaged, INumber<T>
    {
        if (g.Cols == 0 || g.C == 0) return;
        int padH = g.DilH * (g.R - 1) - g.PadH, padW = g.DilW * (g.S - 1) - g.PadW;
        if (g.StrideH == 1 && g.StrideW == 1 && padH >= 0 && padW >= 0)
        {
            // dX = conv(dY, W') with W'[g*Cg + c, k, r, s] = W[g*Kg + k, c, R-1-r, S-1-s]; the weight
            // packing reads W' straight from W.
            var t = new ConvGeom(g.N, g.K, g.P, g.Q, g.C, g.R, g.S, g.H, g.W, 1, 1, padH, padW, g.DilH, g.DilW, g.Groups);
            Forward(dx, dy, w, null, t, threads, flippedWeights: true);
            return;
        }
        BackwardDataCol2Im(dx, dy, w, g, threads);
    }

    /// <summary>
    /// Strided backward data: per image and group, dcol = W_g^T dY_g in column chunks, added onto
    /// the phase planes of dX (contiguous runs), which are then interleaved back into dX.
    /// </summary>
    private static void BackwardDataCol2Im<T>(T* dx, T* dy, T* w, ConvGeom g, int threads) where T : unmanaged, INumber<T>
    {
        var isa = CpuGemm.Isa;
        var (MR, NR) = GemmKernels.TileShape<T>(isa);
        int kg = g.Kg, taps = g.Taps, pq = g.PQ;
        int KCb = CpuGemm.KC<T>(kg);
        int ncMax = CpuGemm.NCMax<T>();
        int rowBlock = Math.Max(MR, 256 / MR * MR);
        using var own = CpuWorkspace.Begin();
        var planes = g.Strided ? new ConvPlanes<T>(own.Get<T>(ConvPlanes<T>.SplitSize(g)), g) : ConvPlanes<T>.Direct(dx, g);
        // W_g^T (taps x K/groups) packed once for all tasks.
        int mPad = CpuGemm.PrepackSize<T>(isa, taps);
        long packedPerGroup = (long)mPad * kg;
        T* wt = own.Get<T>(packedPerGroup * g.Groups);
        nint wsrc = (nint)w;
        CpuGemm.PrepackGroups(isa, gi => new DenseA<T>((T*)wsrc + (long)gi * kg * taps, taps, true), g.Groups, taps, kg, wt, threads);
        nint dxp = (nint)dx, dyp = (nint)dy, wpp = (nint)wt;
        long work = (long)g.N * g.Groups * kg * taps * pq;
        if (work < CpuGemm.SerialWork) threads = 1;
        // Tasks own whole images (times groups), so their regions of dX are disjoint and the
        // scatter needs no locks; small images are batched so that the GEMM columns stay wide.
        int perTask = pq >= ncMax ? 1 : Math.Clamp(ncMax / pq, 1, Math.Max(1, (g.N + threads - 1) / threads));
        int imageTasks = (g.N + perTask - 1) / perTask;
        int ncAlloc = Math.Min(ncMax, perTask * pq);
        CpuGemm.RunTasks(imageTasks * g.Groups, threads, (t, s) =>
        {
            int n0 = t / g.Groups * perTask, n1 = Math.Min(g.N, n0 + perTask), gi = t % g.Groups;
            for (int n = n0; n < n1; n++) planes.Clear(g, n, gi * g.Cg, (gi + 1) * g.Cg);
            var pa = new PrepackedA<T>((T*)wpp + gi * packedPerGroup, mPad);
            var pb = new ImageColumnsB<T>((T*)dyp, g, gi);
            T* bufB = s.Get<T>(CpuScratch.SlotB, (long)KCb * ((ncAlloc + NR - 1) / NR * NR));
            T* cb = s.Get<T>(CpuScratch.SlotC, (long)rowBlock * ncAlloc);
            int count = (n1 - n0) * pq;
            int chunks = (count + ncMax - 1) / ncMax;
            for (int ci = 0; ci < chunks; ci++)
            {
                var (c0, c1) = CpuGemm.ChunkRange(count, NR, chunks, ci);
                int nc = c1 - c0;
                if (nc <= 0) continue;
                long j0 = (long)n0 * pq + c0;
                for (int m0 = 0; m0 < taps; m0 += rowBlock)
                {
                    int m1 = Math.Min(taps, m0 + rowBlock);
                    CpuGemm.Block(isa, pa, pb, m0, m1, (int)j0, nc, kg, cb - (long)m0 * nc, nc, T.One, T.Zero, null, bufB);
                    Im2Col.AddRows(planes, cb, nc, g, gi, m0, m1, j0, nc);
                }
            }
            if (g.Strided)
                for (int n = n0; n < n1; n++) planes.Merge((T*)dxp, g, n, gi * g.Cg, (gi + 1) * g.Cg);
        });
    }
}
