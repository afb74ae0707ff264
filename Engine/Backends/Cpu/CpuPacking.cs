// Packing of GEMM operands into the layouts the micro-kernels read (CpuGemmKernels.cs): op(A)
// as MR-tall panels (for each k, MR consecutive rows), op(B) as NR-wide slivers (for each k, NR
// consecutive columns), zero-padded at the edges so that edge tiles need no special kernel.
// Convolution supplies its own packers (CpuIm2Col.cs) that read the image directly.
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
            // Rows to k-major: an mr x kc transpose. Full 8-row panels go through 8x8 (F32) or
            // 4x4 (F64) register transposes; the rest element by element.
            int k0 = 0;
            if (MR == 8 && mr == 8 && Avx.IsSupported)
                k0 = typeof(T) == typeof(float)
                    ? Transpose8((float*)(a + (long)i0 * lda + pc), lda, kc, (float*)dst)
                    : typeof(T) == typeof(double) ? Transpose8((double*)(a + (long)i0 * lda + pc), lda, kc, (double*)dst) : 0;
            for (int i = 0; i < mr; i++)
            {
                T* s = a + (long)(i0 + i) * lda + pc;
                for (int k = k0; k < kc; k++) dst[k * MR + i] = s[k];
            }
            for (int i = mr; i < MR; i++)
                for (int k = 0; k < kc; k++) dst[k * MR + i] = default;
        }
        return dst;
    }

    /// <summary>dst[k * 8 + i] = src[i * ld + k] for i &lt; 8 and k below the returned multiple of 8 (at most kc).</summary>
    private static int Transpose8(float* src, int ld, int kc, float* dst)
    {
        int k = 0;
        for (; k + 8 <= kc; k += 8)
        {
            float* s = src + k;
            var t0 = Avx.UnpackLow(Vector256.Load(s), Vector256.Load(s + ld));
            var t1 = Avx.UnpackHigh(Vector256.Load(s), Vector256.Load(s + ld));
            var t2 = Avx.UnpackLow(Vector256.Load(s + 2 * ld), Vector256.Load(s + 3 * ld));
            var t3 = Avx.UnpackHigh(Vector256.Load(s + 2 * ld), Vector256.Load(s + 3 * ld));
            var t4 = Avx.UnpackLow(Vector256.Load(s + 4 * ld), Vector256.Load(s + 5 * ld));
            var t5 = Avx.UnpackHigh(Vector256.Load(s + 4 * ld), Vector256.Load(s + 5 * ld));
            var t6 = Avx.UnpackLow(Vector256.Load(s + 6 * ld), Vector256.Load(s + 7 * ld));
            var t7 = Avx.UnpackHigh(Vector256.Load(s + 6 * ld), Vector256.Load(s + 7 * ld));
            var u0 = Avx.Shuffle(t0, t2, 0x44);
            var u1 = Avx.Shuffle(t0, t2, 0xEE);
            var u2 = Avx.Shuffle(t1, t3, 0x44);
            var u3 = Avx.Shuffle(t1, t3, 0xEE);
            var u4 = Avx.Shuffle(t4, t6, 0x44);
            var u5 = Avx.Shuffle(t4, t6, 0xEE);
            var u6 = Avx.Shuffle(t5, t7, 0x44);
            var u7 = Avx.Shuffle(t5, t7, 0xEE);
            float* d = dst + k * 8;
            Avx.Permute2x128(u0, u4, 0x20).Store(d);
            Avx.Permute2x128(u1, u5, 0x20).Store(d + 8);
            Avx.Permute2x128(u2, u6, 0x20).Store(d + 16);
            Avx.Permute2x128(u3, u7, 0x20).Store(d + 24);
            Avx.Permute2x128(u0, u4, 0x31).Store(d + 32);
            Avx.Permute2x128(u1, u5, 0x31).Store(d + 40);
            Avx.Permute2x128(u2, u6, 0x31).Store(d + 48);
            Avx.Permute2x128(u3, u7, 0x31).Store(d + 56);
        }
        return k;
    }

    /// <summary>The F64 version: two 4x4 transposes per 4 values of k.</summary>
    private static int Transpose8(double* src, int ld, int kc, double* dst)
    {
        int k = 0;
        for (; k + 4 <= kc; k += 4)
            for (int half = 0; half < 2; half++)
            {
                double* s = src + k + (long)half * 4 * ld;
                var r0 = Vector256.Load(s);
                var r1 = Vector256.Load(s + ld);
                var r2 = Vector256.Load(s + 2 * ld);
                var r3 = Vector256.Load(s + 3 * ld);
                var t0 = Avx.UnpackLow(r0, r1);
                var t1 = Avx.UnpackHigh(r0, r1);
                var t2 = Avx.UnpackLow(r2, r3);
                var t3 = Avx.UnpackHigh(r2, r3);
                double* d = dst + k * 8 + half * 4;
                Avx.Permute2x128(t0, t2, 0x20).Store(d);
                Avx.Permute2x128(t1, t3, 0x20).Store(d + 8);
                Avx.Permute2x128(t0, t2, 0x31).Store(d + 16);
                Avx.Permute2x128(t1, t3, 0x31).Store(d + 24);
            }
        return k;
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

/// <summary>
/// Convolution weights W_g (K/groups, C/groups, R, S) seen as the A operand of backward data done
/// as a forward convolution: op(A)[c, k * RS + i] = W_g[k, c, RS - 1 - i] (transposed, taps flipped).
/// </summary>
internal readonly unsafe struct FlippedWeightsA<T>(T* wg, int cg, int rs) : IPackA<T> where T : unmanaged
{
    public T* Panel(int pc, int kc, int i0, int mr, int MR, T* dst)
    {
        int k = pc / rs, i = pc % rs;
        for (int kk = 0; kk < kc; kk++)
        {
            T* s = wg + ((long)k * cg + i0) * rs + (rs - 1 - i);
            T* d = dst + kk * MR;
            int c = 0;
            for (; c < mr; c++) d[c] = s[(long)c * rs];
            for (; c < MR; c++) d[c] = default;
            if (++i == rs) { i = 0; k++; }
        }
        return dst;
    }
}
