// Cache-blocked, multi-threaded GEMM on the CPU (the BLIS loop structure), generic over F32/F64.
// C (M x N) = alpha * op(A) op(B) + beta * C. The k dimension is cut into KC-deep blocks; for
// each, a chunk of op(B)'s columns is packed into NR-wide slivers (kept in L2) and op(A) into
// MR-tall panels (kept in L1), then the micro-kernel (CpuGemmKernels.cs) sweeps the slivers.
// Packing is abstracted (IPackA / IPackB) so that convolution can pack straight from the image
// (implicit im2col, CpuIm2Col.cs) and reuse weights packed once. Work is split into independent
// tasks over column chunks (and row blocks when there are few columns); each task packs its
// own operands, so tasks never synchronise.
using System.Collections.Concurrent;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ResidualEngine.Backends.Cpu;

/// <summary>Supplies MR-row panels of op(A): kc values of k, each with MR rows (zero past mr).</summary>
internal unsafe interface IPackA<T> where T : unmanaged
{
    /// <summary>Returns the panel for rows [i0, i0 + mr) and k in [pc, pc + kc), packed into
    /// <paramref name="scratch"/> (kc * MR elements) or found in a pre-packed buffer.</summary>
    T* Panel(int pc, int kc, int i0, int mr, int MR, T* scratch);
}

/// <summary>Packs columns [n0, n0 + nc) of op(B), rows [pc, pc + kc), as NR-wide slivers of kc x NR (zero past the edge).</summary>
internal unsafe interface IPackB<T> where T : unmanaged
{
    void Pack(int pc, int kc, int n0, int nc, int NR, T* dst);
}

/// <summary>A dense row-major matrix as op(A): op(A)[i, k] = trans ? a[k * lda + i] : a[i * lda + k].</summary>
internal readonly unsafe struct DenseA<T>(T* a, int lda, bool trans) : IPackA<T> where T : unmanaged
{
    public T* Panel(int pc, int kc, int i0, int mr, int MR, T* dst)
    {
        if (trans)
        {
            for (int k = 0; k < kc; k++)
            {
                T* s = a + (long)(pc + k) * lda + i0;
                T* d = dst + k * MR;
                int i = 0;
                for (; i < mr; i++) d[i] = s[i];
                for (; i < MR; i++) d[i] = default;
            }
        }
        else
        {
            for (int i = 0; i < mr; i++)
            {
                T* s = a + (long)(i0 + i) * lda + pc;
                for (int k = 0; k < kc; k++) dst[k * MR + i] = s[k];
            }
            for (int i = mr; i < MR; i++)
                for (int k = 0; k < kc; k++) dst[k * MR + i] = default;
        }
        return dst;
    }
}

/// <summary>Panels packed once up front (conv weights): block pc starts at pc * Mpad, panel p at p * kc * MR inside it.</summary>
internal readonly unsafe struct PrepackedA<T>(T* packed, int mPad) : IPackA<T> where T : unmanaged
{
    public T* Panel(int pc, int kc, int i0, int mr, int MR, T* scratch) => packed + (long)pc * mPad + (long)i0 * kc;
}

/// <summary>A dense row-major matrix as op(B): op(B)[k, j] = trans ? b[j * ldb + k] : b[k * ldb + j].</summary>
internal readonly unsafe struct DenseB<T>(T* b, int ldb, bool trans) : IPackB<T> where T : unmanaged
{
    public void Pack(int pc, int kc, int n0, int nc, int NR, T* dst)
    {
        for (int j0 = 0; j0 < nc; j0 += NR)
        {
            int nr = Math.Min(NR, nc - j0);
            T* d = dst + (long)j0 * kc;
            if (trans)
            {
                for (int j = 0; j < nr; j++)
                {
                    T* s = b + (long)(n0 + j0 + j) * ldb + pc;
                    for (int k = 0; k < kc; k++) d[k * NR + j] = s[k];
                }
                if (nr < NR)
                    for (int k = 0; k < kc; k++) new Span<T>(d + k * NR + nr, NR - nr).Clear();
            }
            else
            {
                for (int k = 0; k < kc; k++)
                {
                    T* dk = d + k * NR;
                    VecCopy.Copy(dk, b + (long)(pc + k) * ldb + n0 + j0, nr);
                    for (int j = nr; j < NR; j++) dk[j] = default;
                }
            }
        }
    }
}

/// <summary>Per-thread scratch memory (64-byte aligned, grown on demand, pooled across calls).</summary>
internal sealed unsafe class CpuScratch
{
    private static readonly ConcurrentBag<CpuScratch> s_pool = new();
    private readonly void*[] _ptr = new void*[4];
    private readonly long[] _bytes = new long[4];

    public const int SlotA = 0, SlotB = 1, SlotC = 2, SlotD = 3;

    public static CpuScratch Rent() => s_pool.TryTake(out var s) ? s : new CpuScratch();
    public static void Return(CpuScratch s) => s_pool.Add(s);

    /// <summary>Tests: fill new and pooled buffers with NaN bit patterns, so that any read of
    /// memory a kernel did not write first shows up in its results.</summary>
    internal static bool PoisonNew { get; set; }

    internal static void PoisonPooled()
    {
        CpuWorkspace.PoisonCached();
        foreach (var s in s_pool)
            for (int i = 0; i < s._ptr.Length; i++)
                if (s._ptr[i] is not null) new Span<byte>(s._ptr[i], checked((int)s._bytes[i])).Fill(0xFF);
    }

    /// <summary>At least <paramref name="count"/> elements of T in slot <paramref name="slot"/> (contents undefined).</summary>
    public T* Get<T>(int slot, long count) where T : unmanaged
    {
        long bytes = Math.Max(64, count * sizeof(T));
        if (_bytes[slot] < bytes)
        {
            NativeMemory.AlignedFree(_ptr[slot]);
            _ptr[slot] = null;
            _bytes[slot] = 0;
            _ptr[slot] = NativeMemory.AlignedAlloc((nuint)bytes, 64);
            if (_ptr[slot] is null) throw new OutOfMemoryException($"cannot allocate {bytes} bytes of CPU scratch memory");
            _bytes[slot] = bytes;
            if (PoisonNew) new Span<byte>(_ptr[slot], checked((int)bytes)).Fill(0xFF);
        }
        return (T*)_ptr[slot];
    }

    ~CpuScratch()
    {
        for (int i = 0; i < _ptr.Length; i++) NativeMemory.AlignedFree(_ptr[i]);
    }
}

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

    /// <summary>Depth of one k block, in elements (the packed A panel stays in L1, the B chunk in L2).</summary>
    public static int KC<T>() where T : unmanaged => sizeof(T) == 4 ? 256 : 192;

    /// <summary>Widest column chunk one task packs (elements); a multiple of every NR.</summary>
    public static int NCMax<T>() where T : unmanaged => sizeof(T) == 4 ? 384 : 240;

    /// <summary>Below this many multiply-adds a call runs on the calling thread.</summary>
    public const long SerialWork = 1 << 16;

    /// <summary>Runs body(task, scratch) for every task, in parallel when threads &gt; 1.</summary>
    public static void RunTasks(int count, int threads, Action<int, CpuScratch> body)
    {
        if (count <= 0) return;
        if (count == 1 || threads <= 1)
        {
            var s = CpuScratch.Rent();
            try { for (int i = 0; i < count; i++) body(i, s); }
            finally { CpuScratch.Return(s); }
            return;
        }
        Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = threads },
            CpuScratch.Rent, (i, _, s) => { body(i, s); return s; }, CpuScratch.Return);
    }

    /// <summary>Start of part <paramref name="i"/> of <paramref name="parts"/> when splitting <paramref name="units"/> units evenly.</summary>
    public static int Split(int units, int parts, int i) => (int)((long)units * i / parts);

    /// <summary>
    /// One task's share: C rows [m0, m1) (m0 a multiple of MR) and the nc columns starting at n0,
    /// where <paramref name="c"/> addresses C[0, n0]. Packs op(B) per k block into bufB (KC * round(nc, NR))
    /// and op(A) panels into bufA (KC * MR) when they are not pre-packed.
    /// </summary>
    public static void Block<T, TA, TB>(GemmIsa isa, in TA pa, in TB pb, int m0, int m1, int n0, int nc, int K,
        T* c, int ldc, T alpha, T beta, T* bufA, T* bufB)
        where T : unmanaged, INumber<T> where TA : struct, IPackA<T> where TB : struct, IPackB<T>
    {
        var (MR, NR) = GemmKernels.TileShape<T>(isa);
        int KCb = KC<T>();
        T* tile = stackalloc T[MR * NR];
        int* boff = stackalloc int[KCb];
        for (int k = 0; k < KCb; k++) boff[k] = k * NR;
        for (int pc = 0; pc < K; pc += KCb)
        {
            int kc = Math.Min(KCb, K - pc);
            pb.Pack(pc, kc, n0, nc, NR, bufB);
            bool first = pc == 0;
            bool overwrite = first && beta == T.Zero;
            T b = first ? beta : T.One;
            for (int i0 = m0; i0 < m1; i0 += MR)
            {
                int mr = Math.Min(MR, m1 - i0);
                T* ap = pa.Panel(pc, kc, i0, mr, MR, bufA);
                T* ci = c + (long)i0 * ldc;
                for (int j0 = 0; j0 < nc; j0 += NR)
                    GemmKernels.Run(isa, kc, ap, bufB + (long)j0 * kc, boff, ci + j0, ldc, mr, Math.Min(NR, nc - j0), alpha, b, overwrite, tile);
            }
        }
    }

    /// <summary>Packs all of op(A) (M x K) once, in the layout PrepackedA reads. Returns Mpad, the padded row count.</summary>
    public static int PrepackSize<T>(GemmIsa isa, int m) where T : unmanaged
    {
        int MR = GemmKernels.TileShape<T>(isa).MR;
        return (m + MR - 1) / MR * MR;
    }

    public static void Prepack<T, TA>(GemmIsa isa, in TA pa, int m, int k, T* dst) where T : unmanaged, INumber<T> where TA : struct, IPackA<T>
    {
        int MR = GemmKernels.TileShape<T>(isa).MR;
        int mPad = PrepackSize<T>(isa, m);
        int KCb = KC<T>();
        for (int pc = 0; pc < k; pc += KCb)
        {
            int kc = Math.Min(KCb, k - pc);
            for (int i0 = 0; i0 < m; i0 += MR)
            {
                T* d = dst + (long)pc * mPad + (long)i0 * kc;
                T* p = pa.Panel(pc, kc, i0, Math.Min(MR, m - i0), MR, d);
                if (p != d) new ReadOnlySpan<T>(p, kc * MR).CopyTo(new Span<T>(d, kc * MR));
            }
        }
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
        var (chunks, rowBlocks) = Plan<T>(isa, m, n, (long)m * n * k, threads);
        int KCb = KC<T>();
        var pa = new DenseA<T>(a, lda, transA);
        var pb = new DenseB<T>(b, ldb, transB);
        nint cp = (nint)c;
        RunTasks(chunks * rowBlocks, threads, (t, s) =>
        {
            var (j0, j1) = ChunkRange(n, NR, chunks, t / rowBlocks);
            var (i0, i1) = RowRange(m, MR, rowBlocks, t % rowBlocks);
            int nc = j1 - j0;
            if (nc <= 0 || i1 <= i0) return;
            T* bufA = s.Get<T>(CpuScratch.SlotA, (long)KCb * MR);
            T* bufB = s.Get<T>(CpuScratch.SlotB, (long)KCb * ((nc + NR - 1) / NR * NR));
            Block(isa, pa, pb, i0, i1, j0, nc, k, (T*)cp + j0, ldc, alpha, beta, bufA, bufB);
        });
    }
}
