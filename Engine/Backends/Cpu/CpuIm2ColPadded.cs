// Zero-padded planes for stride-1 convolutions on narrow images (output width below the shift
// path's MinWidth, e.g. 8x8): the padding is materialised once per call, so each tap's run of an
// output row lies inside its plane, and the column-matrix packers copy every run from an offset
// computed once per sliver, with no bounds, clipping or masks to work out per run and tap (at 8x8
// images, 8-pixel runs, that bookkeeping was about a third of the convolution's time).
// Padded plane coordinates: row i holds input row i - PadH (zero outside the image), column j
// input column j - PadW; output pixel (p, q) of tap (r, s) reads row p + r * DilH, column q + s * DilW.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ResidualEngine.Backends.Cpu;

internal readonly unsafe partial struct ConvPlanes<T>
{
    private ConvPlanes(T* basePtr, in ConvGeom g, bool padded)
    {
        Base = basePtr;
        Padded = padded;
        Hp = g.P + (g.R - 1) * g.DilH;
        Wp = g.Q + (g.S - 1) * g.DilW;
        ChannelStride = (long)Hp * Wp;
        ImageStride = ChannelStride * g.C;
        RowShift = new int[g.R];
        ColShift = new int[g.S];
        _rowPlane = new long[g.R];
        _colPlane = new long[g.S];
        _rowUsed = [true];
        _colUsed = [true];
        for (int r = 0; r < g.R; r++) RowShift[r] = r * g.DilH;
        for (int s = 0; s < g.S; s++) ColShift[s] = s * g.DilW;
    }

    /// <summary>Whether a convolution should read padded planes: stride 1, padding, and narrow output rows
    /// (wider ones take the shift path, 1x1 ones a direct GEMM).</summary>
    public static bool SuitsPadding(in ConvGeom g) =>
        !g.Strided && (g.PadH > 0 || g.PadW > 0) && g.Q < ShiftPlanes<T>.MinWidth && g.Q <= 64 / sizeof(T);

    /// <summary>Elements of the padded copy of an input.</summary>
    public static long PadSize(in ConvGeom g) => (long)g.N * g.C * (g.P + (g.R - 1) * g.DilH) * (g.Q + (g.S - 1) * g.DilW);

    /// <summary>Copies x into zero-padded planes in <paramref name="dst"/> (PadSize elements), in parallel over planes.</summary>
    public static ConvPlanes<T> Pad(T* x, T* dst, ConvGeom g, int threads)
    {
        var planes = new ConvPlanes<T>(dst, g, padded: true);
        int hp = planes.Hp, wp = planes.Wp;
        int jlo = Math.Clamp(g.PadW, 0, wp), jhi = Math.Clamp(g.PadW + g.W, jlo, wp);
        nint xp = (nint)x, dp = (nint)dst;
        long work = (long)g.N * g.C * hp * wp;
        CpuGemm.RunTasks(g.N * g.C, work < CpuGemm.SerialWork ? 1 : threads, (t, _) =>
        {
            T* src = (T*)xp + (long)t * g.HW;
            T* d = (T*)dp + (long)t * hp * wp;
            for (int i = 0; i < hp; i++)
            {
                int h = i - g.PadH;
                T* drow = d + (long)i * wp;
                if ((uint)h >= (uint)g.H)
                {
                    VecCopy.Zero(drow, wp);
                    continue;
                }
                for (int j = 0; j < jlo; j++) drow[j] = default;
                VecCopy.Copy(drow + jlo, src + (long)h * g.W + (jlo - g.PadW), jhi - jlo);
                for (int j = jhi; j < wp; j++) drow[j] = default;
            }
        });
        return planes;
    }
}

/// <summary>The packers' loops over padded planes (see the file comment).</summary>
internal static unsafe class PaddedRuns
{
    /// <summary>Im2ColB.Pack over padded planes: slivers of NR columns from n0, rows of this k block given by
    /// their planes (tapPlane) and shifts (tapRow, tapCol).</summary>
    public static void Pack<T>(in ConvPlanes<T> planes, in ConvGeom g, int n0, int nc, int NR, int kc,
        long* tapPlane, int* tapRow, int* tapCol, T* dst) where T : unmanaged
    {
        int maxRuns = Im2Col.MaxRuns(g, NR);
        Span<(int N, int P, int Q, int Len)> runs = stackalloc (int, int, int, int)[maxRuns];
        long* runSrc = stackalloc long[maxRuns];
        int* runLen = stackalloc int[maxRuns];
        int wp = planes.Wp;
        for (int j0 = 0; j0 < nc; j0 += NR)
        {
            int nr = Math.Min(NR, nc - j0);
            int nRuns = Im2Col.Runs(g, n0 + j0, nr, runs);
            for (int i = 0; i < nRuns; i++)
            {
                runSrc[i] = runs[i].N * planes.ImageStride + (long)runs[i].P * wp + runs[i].Q;
                runLen[i] = runs[i].Len;
            }
            T* d = dst + (long)j0 * kc;
            for (int k = 0; k < kc; k++)
            {
                T* drow = d + k * NR;
                T* tb = planes.Base + tapPlane[k] + (long)tapRow[k] * wp + tapCol[k];
                int off = 0;
                for (int i = 0; i < nRuns; i++)
                {
                    CopyRun(drow + off, tb + runSrc[i], runLen[i]);
                    off += runLen[i];
                }
                for (int u = nr; u < NR; u++) drow[u] = default;
            }
        }
    }

    /// <summary>Im2Col.Rows over padded planes, for the runs of columns [j0, j0 + count).</summary>
    public static void Rows<T>(T* dst, int ld, in ConvPlanes<T> src, in ConvGeom g, int group, int row0, int row1,
        ReadOnlySpan<(int N, int P, int Q, int Len)> runs, int count) where T : unmanaged
    {
        int nRuns = runs.Length, wp = src.Wp, rs = g.R * g.S;
        long* runSrc = stackalloc long[nRuns];
        for (int i = 0; i < nRuns; i++) runSrc[i] = runs[i].N * src.ImageStride + (long)runs[i].P * wp + runs[i].Q;
        for (int row = row0; row < row1; row++)
        {
            int c = row / rs, t = row % rs, r = t / g.S, s = t % g.S;
            T* tb = src.Base + (group * g.Cg + c) * src.ChannelStride + (long)src.RowShift[r] * wp + src.ColShift[s];
            T* d = dst + (long)(row - row0) * ld;
            int off = 0;
            for (int i = 0; i < nRuns; i++)
            {
                CopyRun(d + off, tb + runSrc[i], runs[i].Len);
                off += runs[i].Len;
            }
            if (ld > count) VecCopy.Zero(d + count, ld - count);
        }
    }

    /// <summary>dst[0 .. len) = src[0 .. len): one masked load and store for runs of up to one AVX-512 vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyRun<T>(T* dst, T* src, int len) where T : unmanaged
    {
        if (Avx512F.IsSupported)
        {
            if (typeof(T) == typeof(float) && len <= 16)
            {
                var m = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(len)).AsSingle();
                Avx512F.MaskStore((float*)dst, m, Avx512F.MaskLoad((float*)src, m, Vector512<float>.Zero));
                return;
            }
            if (typeof(T) == typeof(double) && len <= 8)
            {
                var m = Vector512.LessThan(Vector512<long>.Indices, Vector512.Create((long)len)).AsDouble();
                Avx512F.MaskStore((double*)dst, m, Avx512F.MaskLoad((double*)src, m, Vector512<double>.Zero));
                return;
            }
        }
        VecCopy.Copy(dst, src, len);
    }
}
