// 1x1 convolutions without any im2col copy. With stride 1 and no padding, image n's column matrix
// is the image itself: Y_n (K x HW) = W (K x C) X_n (C x HW), so the GEMM micro-kernels read their
// B rows straight from the activation (row c of a sliver is x[n, c, j .. j + NR), through a table
// of per-channel offsets) and write straight into y, with the epilogue (bias, residual, ReLU)
// applied to each tile after its last k block. Only a sliver cut by the end of an image is copied
// (zero-padded) first. Images with few pixels (fewer than a handful of slivers) take the batched
// im2col path instead, which packs columns of several images into one sliver.
// A strided 1x1 convolution (ResNet's downsampling shortcut) reads one pixel in stride^2: those
// are gathered once into a compact (N, C, P, Q) buffer, which is then a stride-1 1x1 convolution.
using System.Numerics;

namespace ResidualEngine.Backends.Cpu;

internal static unsafe class Direct1x1<T> where T : unmanaged
{
    /// <summary>Stride 1, no padding, enough pixels per image for whole slivers, and 32-bit offsets.</summary>
    public static bool Suits(in ConvGeom g)
    {
        int NR = GemmKernels.TileShape<T>(CpuGemm.Isa).NR;
        return g.R == 1 && g.S == 1 && !g.Strided && g.PadH == 0 && g.PadW == 0
            && g.PQ >= 4 * NR && (long)g.Cg * g.HW < int.MaxValue;
    }
}

internal static unsafe partial class CpuConv
{
    private static void Forward1x1<T>(T* y, T* x, T* w, ConvGeom g, int threads, ConvEpilogue<T> epi, bool flippedWeights, T* prepacked)
        where T : unmanaged, INumber<T>
    {
        var isa = CpuGemm.Isa;
        var (MR, NR) = GemmKernels.TileShape<T>(isa);
        int kg = g.Kg, taps = g.Taps, hw = g.HW;
        int KCb = CpuGemm.KC<T>();
        using var own = CpuWorkspace.Begin();
        int mPad = CpuGemm.PrepackSize<T>(isa, kg);
        long packedPerGroup = (long)mPad * taps;
        T* wp = prepacked != null ? prepacked : own.Get<T>(packedPerGroup * g.Groups);
        if (prepacked == null) PackWeights(isa, w, g, flippedWeights, wp, threads);
        // Offsets of the taps (input channels of a group) from the group's first channel.
        int* chanOff = (int*)own.Get<int>(taps);
        for (int t = 0; t < taps; t++) chanOff[t] = t * hw;

        long work = (long)kg * hw * taps * g.Groups * g.N;
        if (work < CpuGemm.SerialWork) threads = 1;
        int threadsPerImage = (threads + g.N * g.Groups - 1) / (g.N * g.Groups);
        var (chunks, rowBlocks) = CpuGemm.Plan<T>(isa, kg, hw, work, threadsPerImage);
        int perImage = chunks * rowBlocks;
        nint yp = (nint)y, xp = (nint)x, wpp = (nint)wp, cop = (nint)chanOff;
        CpuGemm.RunTasks(g.Groups * g.N * perImage, threads, (t, s) =>
        {
            int gi = t / (g.N * perImage), n = t / perImage % g.N, ci = t % perImage / rowBlocks, mi = t % rowBlocks;
            var (j0, j1) = CpuGemm.ChunkRange(hw, NR, chunks, ci);
            var (m0, m1) = CpuGemm.RowRange(kg, MR, rowBlocks, mi);
            if (j1 <= j0 || m1 <= m0) return;
            T* tile = s.Get<T>(CpuScratch.SlotA, (long)MR * NR);
            T* tail = s.Get<T>(CpuScratch.SlotB, (long)KCb * NR);
            int* seq = (int*)s.Get<int>(CpuScratch.SlotC, KCb);
            for (int k = 0; k < KCb; k++) seq[k] = k * NR;
            T* xb = (T*)xp + ((long)n * g.C + (long)gi * g.Cg) * hw;
            T* yb = (T*)yp + ((long)n * g.K + (long)gi * kg) * hw;
            var pa = new PrepackedA<T>((T*)wpp + gi * packedPerGroup, mPad);
            var ge = epi.ForGroup(gi, kg);
            for (int pc = 0; pc < taps; pc += KCb)
            {
                int kc = Math.Min(KCb, taps - pc);
                bool first = pc == 0, last = pc + kc >= taps;
                // Slivers outside, panels inside: a sliver's kc rows stay in L1 while the packed
                // weight panels stream from L2.
                for (int jj = j0; jj < j1; jj += NR)
                {
                    int nr = Math.Min(NR, j1 - jj);
                    T* b;
                    int* boff;
                    if (nr == NR && jj + NR <= hw)
                    {
                        b = xb + jj;
                        boff = (int*)cop + pc;
                    }
                    else
                    {
                        // The last sliver of the image: copy its columns, zero past the edge.
                        for (int k = 0; k < kc; k++)
                        {
                            VecCopy.Copy(tail + k * NR, xb + (long)(pc + k) * hw + jj, nr);
                            for (int u = nr; u < NR; u++) tail[k * NR + u] = default;
                        }
                        b = tail;
                        boff = seq;
                    }
                    for (int i0 = m0; i0 < m1; i0 += MR)
                    {
                        int mr = Math.Min(MR, m1 - i0);
                        T* ap = pa.Panel(pc, kc, i0, mr, MR, null);
                        T* c = yb + (long)i0 * hw + jj;
                        GemmKernels.Run(isa, kc, ap, b, boff, c, hw, mr, nr, T.One, first ? T.Zero : T.One, first, tile);
                        if (last) ge.Tile(c, hw, i0, mr, nr);
                    }
                }
            }
        });
    }

    /// <summary>A 1x1 convolution with stride and no padding: gather x[:, :, ::sh, ::sw] into (N, C, P, Q), then stride 1.</summary>
    private static void ForwardStrided1x1<T>(T* y, T* x, T* w, ConvGeom g, int threads, ConvEpilogue<T> epi, bool flippedWeights, T* prepacked)
        where T : unmanaged, INumber<T>
    {
        using var own = CpuWorkspace.Begin();
        T* xs = own.Get<T>((long)g.N * g.C * g.PQ);
        nint xp = (nint)x, sp = (nint)xs;
        long work = (long)g.N * g.C * g.PQ;
        CpuGemm.RunTasks(g.N * g.C, work < CpuGemm.SerialWork ? 1 : threads, (t, _) =>
        {
            T* src = (T*)xp + (long)t * g.HW;
            T* dst = (T*)sp + (long)t * g.PQ;
            for (int p = 0; p < g.P; p++)
            {
                T* srow = src + (long)p * g.StrideH * g.W;
                T* drow = dst + (long)p * g.Q;
                if (g.StrideW == 2) VecCopy.Deinterleave2Even(drow, srow, g.Q, g.W);
                else for (int q = 0; q < g.Q; q++) drow[q] = srow[(long)q * g.StrideW];
            }
        });
        var g1 = new ConvGeom(g.N, g.C, g.P, g.Q, g.K, 1, 1, g.P, g.Q, 1, 1, 0, 0, 1, 1, g.Groups);
        Forward(y, xs, w, g1, threads, epi, flippedWeights, prepacked);
    }
}
