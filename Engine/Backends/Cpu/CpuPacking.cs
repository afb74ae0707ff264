// Packing of GEMM operands into the layouts the micro-kernels read (CpuGemmKernels.cs): op(A)
// as MR-tall panels (for each k, MR consecutive rows), op(B) as NR-wide slivers (for each k, NR
// consecutive columns), zero-padded at the edges so that edge tiles need no special kernel.
// Convolution supplies its own packers (CpuIm2Col.cs) that read the image directly.
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
