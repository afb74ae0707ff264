// Cache-blocked, multi-threaded GEMM on the CPU (the BLIS loop structure), generic over F32/F64.
// C (M x N) = alpha * op(A) op(B) + beta * C. The k dimension is cut into KC-deep blocks; for
// each, a chunk of op(B)'s columns is packed into NR-wide slivers (kept in L2) and op(A) into
// MR-tall panels (kept in L1), then the micro-kernel (CpuGemmKernels.cs) sweeps the slivers.
// Packing is abstracted (IPackA / IPackB, CpuPacking.cs) so that convolution can pack straight
// from the image (implicit im2col, CpuIm2Col.cs) and reuse weights packed once. Work is split
// into independent tasks over column chunks (and row blocks when there are few columns); each
// task packs its own operands, so tasks never synchronise.
using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ResidualEngine.Backends.Cpu;

internal static unsafe class CpuGemm
{
    private static readonly GemmIsa s_detected =
        Vector512.IsHardwareAccelerated && Avx512F.IsSupported ? GemmIsa.Avx512
        : Vector256.IsHardwareAccelerated && Fma.IsSupported ? GemmIsa.Avx2
        : GemmIsa.Portable;

    /// <summary>The best kernel family this machine supports.</summary>
    public static GemmIsa DetectedIsa => s_detected;

    /// <summary>The kernel family in use; tests lower it to exercise every family the machine can run.</summary>
    public static GemmIsa Isa { get; set; } = s_detected;

    /// <summary>Largest depth of one k block, in elements (the packed A panel stays in L1, the B chunk in L2).</summary>
    public static int MaxKC<T>() where T : unmanaged => sizeof(T) == 4 ? 256 : 192;

    /// <summary>Depth of the k blocks of a product of depth <paramref name="k"/>: as even as possible under MaxKC
    /// (288 = 2 x 144 rather than 256 + 32, whose short block would pay a full pass over C for little work).
    /// Packers and kernels of one product must use the same k.</summary>
    public static int KC<T>(int k) where T : unmanaged
    {
        int max = MaxKC<T>();
        if (k <= max) return Math.Max(1, k);
        int blocks = (k + max - 1) / max;
        return (k + blocks - 1) / blocks;
    }

    /// <summary>Widest column chunk one task packs (elements); a multiple of every NR.</summary>
    public static int NCMax<T>() where T : unmanaged => sizeof(T) == 4 ? 384 : 240;

    /// <summary>Below this many multiply-adds a call runs on the calling thread.</summary>
    public const long SerialWork = 1 << 16;

    /// <summary>Runs body(task, scratch) for every task, in parallel when threads &gt; 1.</summary>
    public static void RunTasks(int count, int threads, Action<int, CpuScratch> body) => CpuWorkers.Run(count, threads, body);

    /// <summary>Start of part <paramref name="i"/> of <paramref name="parts"/> when splitting <paramref name="units"/> units evenly.</summary>
    public static int Split(int units, int parts, int i) => (int)((long)units * i / parts);

    /// <summary>
    /// One task's share: C rows [m0, m1) (m0 a multiple of MR) and the nc columns starting at n0,
    /// where <paramref name="c"/> addresses C[0, n0]. Packs op(B) per k block into bufB (KC * round(nc, NR))
    /// and op(A) panels into bufA (KC * MR) when they are not pre-packed.
    /// </summary>
    public static void Block<T, TA, TB>(GemmIsa isa, in TA pa, in TB pb, int m0, int m1, int n0, int nc, int K,
        T* c, int ldc, T alpha, T beta, T* bufA, T* bufB)
        where T : unmanaged, INumber<T> where TA : struct, IPackA<T> where TB : struct, IPackB<T> =>
        Block(isa, pa, pb, m0, m1, n0, nc, K, c, ldc, alpha, beta, bufA, bufB, default(NoEpilogue<T>));

    /// <summary>Block with an epilogue applied to every tile of C after its last k block, while it is in cache.</summary>
    public static void Block<T, TA, TB, TE>(GemmIsa isa, in TA pa, in TB pb, int m0, int m1, int n0, int nc, int K,
        T* c, int ldc, T alpha, T beta, T* bufA, T* bufB, TE epilogue)
        where T : unmanaged, INumber<T> where TA : struct, IPackA<T> where TB : struct, IPackB<T> where TE : struct, ITileEpilogue<T>
    {
        var (MR, NR) = GemmKernels.TileShape<T>(isa);
        int KCb = KC<T>(K);
        T* tile = stackalloc T[MR * NR];
        int* boff = stackalloc int[KCb];
        for (int k = 0; k < KCb; k++) boff[k] = k * NR;
        for (int pc = 0; pc < K; pc += KCb)
        {
            int kc = Math.Min(KCb, K - pc);
            pb.Pack(pc, kc, n0, nc, NR, bufB);
            bool first = pc == 0, last = pc + kc >= K;
            bool overwrite = first && beta == T.Zero;
            T b = first ? beta : T.One;
            for (int i0 = m0; i0 < m1; i0 += MR)
            {
                int mr = Math.Min(MR, m1 - i0);
                T* ap = pa.Panel(pc, kc, i0, mr, MR, bufA);
                T* ci = c + (long)i0 * ldc;
                for (int j0 = 0; j0 < nc; j0 += NR)
                {
                    int nr = Math.Min(NR, nc - j0);
                    GemmKernels.Run(isa, kc, ap, bufB + (long)j0 * kc, boff, ci + j0, ldc, mr, nr, alpha, b, overwrite, tile);
                    if (last) epilogue.Tile(ci + j0, ldc, i0, mr, nr);
                }
            }
        }
    }

    /// <summary>Rows of a pre-packed op(A) of m rows (a whole number of MR panels).</summary>
    public static int PrepackSize<T>(GemmIsa isa, int m) where T : unmanaged
    {
        int MR = GemmKernels.TileShape<T>(isa).MR;
        return (m + MR - 1) / MR * MR;
    }

    /// <summary>Packs all of op(A) (m x k) once into dst (PrepackSize * k elements), in the layout PrepackedA reads.</summary>
    public static void Prepack<T, TA>(GemmIsa isa, in TA pa, int m, int k, T* dst) where T : unmanaged, INumber<T> where TA : struct, IPackA<T>
    {
        int MR = GemmKernels.TileShape<T>(isa).MR;
        for (int i0 = 0; i0 < m; i0 += MR) PrepackPanel(isa, pa, m, k, dst, i0);
    }

    /// <summary>Packs the panel of rows [i0, i0 + MR) of op(A) for every k block (see Prepack).</summary>
    public static void PrepackPanel<T, TA>(GemmIsa isa, in TA pa, int m, int k, T* dst, int i0) where T : unmanaged, INumber<T> where TA : struct, IPackA<T>
    {
        int MR = GemmKernels.TileShape<T>(isa).MR;
        int mPad = PrepackSize<T>(isa, m);
        int KCb = KC<T>(k);
        for (int pc = 0; pc < k; pc += KCb)
        {
            int kc = Math.Min(KCb, k - pc);
            T* d = dst + (long)pc * mPad + (long)i0 * kc;
            T* p = pa.Panel(pc, kc, i0, Math.Min(MR, m - i0), MR, d);
            if (p != d) new ReadOnlySpan<T>(p, kc * MR).CopyTo(new Span<T>(d, kc * MR));
        }
    }

    /// <summary>
    /// Packs op(A_g) for every group into dst (groups * PrepackSize(m) * k elements), panels in
    /// parallel; <paramref name="packer"/> gives the packer of group g.
    /// </summary>
    public static void PrepackGroups<T, TA>(GemmIsa isa, Func<int, TA> packer, int groups, int m, int k, T* dst, int threads)
        where T : unmanaged, INumber<T> where TA : struct, IPackA<T>
    {
        int MR = GemmKernels.TileShape<T>(isa).MR;
        int panels = (m + MR - 1) / MR;
        long perGroup = (long)PrepackSize<T>(isa, m) * k;
        nint dp = (nint)dst;
        long work = (long)groups * m * k;
        RunTasks(groups * panels, work < 1 << 18 ? 1 : threads, (t, _) =>
            PrepackPanel(isa, packer(t / panels), m, k, (T*)dp + t / panels * perGroup, t % panels * MR));
    }

    /// <summary>
    /// How to cut an M x N product into tasks: column chunks (evenly spread NR slivers, at most
    /// NCMax wide) and, when there are too few chunks to feed the threads, row blocks of whole panels.
    /// </summary>
    public static (int Chunks, int RowBlocks) Plan<T>(GemmIsa isa, long m, long n, long work, int threads) where T : unmanaged
    {
        var (MR, NR) = GemmKernels.TileShape<T>(isa);
        int slivers = (int)((n + NR - 1) / NR);
        int panels = (int)((m + MR - 1) / MR);
        int maxSlivers = NCMax<T>() / NR;
        int chunks = Math.Max(1, (slivers + maxSlivers - 1) / maxSlivers);
        if (work < SerialWork || threads <= 1) return (chunks, 1);
        // Round the task count up to a multiple of the thread count when that is cheap, so the
        // last wave is not half empty; never cut below one sliver per chunk.
        if (chunks < 4 * threads && chunks % threads != 0) chunks = Math.Min(slivers, (chunks + threads - 1) / threads * threads);
        int rowBlocks = 1;
        if (chunks < threads) rowBlocks = Math.Min(panels, (threads + chunks - 1) / chunks);
        return (chunks, rowBlocks);
    }

    /// <summary>Column range [start, end) of chunk i when NR slivers covering n columns are spread over chunks.</summary>
    public static (int Start, int End) ChunkRange(int n, int NR, int chunks, int i)
    {
        int slivers = (n + NR - 1) / NR;
        int s0 = Split(slivers, chunks, i), s1 = Split(slivers, chunks, i + 1);
        return (s0 * NR, Math.Min(n, s1 * NR));
    }

    /// <summary>Row range [start, end) of row block i (whole MR panels).</summary>
    public static (int Start, int End) RowRange(int m, int MR, int blocks, int i)
    {
        int panels = (m + MR - 1) / MR;
        int p0 = Split(panels, blocks, i), p1 = Split(panels, blocks, i + 1);
        return (p0 * MR, Math.Min(m, p1 * MR));
    }

    /// <summary>Dense C (M x N, ldc) = alpha * op(A) op(B) + beta * C, all row-major.</summary>
    public static void Gemm<T>(int m, int n, int k, T* a, int lda, bool transA, T* b, int ldb, bool transB,
        T* c, int ldc, T alpha, T beta, int threads) where T : unmanaged, INumber<T>
    {
        if (m == 0 || n == 0) return;
        if (k == 0 || alpha == T.Zero)
        {
            for (int i = 0; i < m; i++)
            {
                var row = new Span<T>(c + (long)i * ldc, n);
                if (beta == T.Zero) row.Clear();
                else if (beta != T.One) for (int j = 0; j < n; j++) row[j] *= beta;
            }
            return;
        }
        var isa = Isa;
        var (MR, NR) = GemmKernels.TileShape<T>(isa);
        long work = (long)m * n * k;
        var (chunks, rowBlocks) = Plan<T>(isa, m, n, work, threads);
        int KCb = KC<T>(k);
        var pb = new DenseB<T>(b, ldb, transB);
        nint cp = (nint)c;
        if (chunks == 1)
        {
            var pa = new DenseA<T>(a, lda, transA);
            RunTasks(rowBlocks, work < SerialWork ? 1 : threads, (t, s) =>
            {
                var (i0, i1) = RowRange(m, MR, rowBlocks, t);
                if (i1 <= i0) return;
                T* bufA = s.Get<T>(CpuScratch.SlotA, (long)KCb * MR);
                T* bufB = s.Get<T>(CpuScratch.SlotB, (long)KCb * ((n + NR - 1) / NR * NR));
                Block(isa, pa, pb, i0, i1, 0, n, k, (T*)cp, ldc, alpha, beta, bufA, bufB);
            });
            return;
        }
        // Several column chunks would each pack all of op(A): pack it once instead.
        using var ws = CpuWorkspace.Begin();
        int mPad = PrepackSize<T>(isa, m);
        T* ap = ws.Get<T>((long)mPad * k);
        Prepack(isa, new DenseA<T>(a, lda, transA), m, k, ap);
        var pp = new PrepackedA<T>(ap, mPad);
        RunTasks(chunks * rowBlocks, work < SerialWork ? 1 : threads, (t, s) =>
        {
            var (j0, j1) = ChunkRange(n, NR, chunks, t / rowBlocks);
            var (i0, i1) = RowRange(m, MR, rowBlocks, t % rowBlocks);
            int nc = j1 - j0;
            if (nc <= 0 || i1 <= i0) return;
            T* bufB = s.Get<T>(CpuScratch.SlotB, (long)KCb * ((nc + NR - 1) / NR * NR));
            Block(isa, pp, pb, i0, i1, j0, nc, k, (T*)cp + j0, ldc, alpha, beta, null, bufB);
        });
    }
}
