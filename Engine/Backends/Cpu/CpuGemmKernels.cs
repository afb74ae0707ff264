// Register-blocked GEMM micro-kernels: C[MR x NR] = alpha * A-panel * B-sliver (+ beta * C),
// where the packed A panel holds MR values per k and row k of the B sliver is the NR contiguous
// values at b + boff[k]: a packed sliver (boff[k] = k * NR, see CpuGemm.cs) or, for convolution,
// shifted rows of the padded image itself (CpuConvShift.cs), which needs no packing at all. One kernel per instruction set, generic over F32/F64:
//   Avx512   8 x 3 vectors (24 zmm accumulators of the 32 registers)
//   Avx2     6 x 2 vectors (12 ymm accumulators of the 16 registers)
//   Portable 4 x 2 Vector<T> (any platform; NEON or SSE width)
// Accumulators are named locals rather than arrays so that the JIT keeps them in registers.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ResidualEngine.Backends.Cpu;

/// <summary>Which micro-kernel family the CPU GEMM uses.</summary>
internal enum GemmIsa { Portable, Avx2, Avx512 }

internal static unsafe class GemmKernels
{
    /// <summary>Rows (MR) and columns (NR) of one micro-tile for an instruction set and element type.</summary>
    public static (int MR, int NR) TileShape<T>(GemmIsa isa) where T : unmanaged => isa switch
    {
        GemmIsa.Avx512 => (8, 3 * Vector512<T>.Count),
        GemmIsa.Avx2 => (6, 2 * Vector256<T>.Count),
        _ => (4, 2 * Vector<T>.Count),
    };

    /// <summary>
    /// One micro-tile. <paramref name="overwrite"/>: C = alpha * AB (C is not read); otherwise
    /// C = alpha * AB + beta * C. Only the top-left mr x nr corner of the tile is stored; edge tiles
    /// pass through <paramref name="tile"/> (MR * NR elements of scratch).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Run<T>(GemmIsa isa, int kc, T* a, T* b, int* boff, T* c, int ldc, int mr, int nr, T alpha, T beta, bool overwrite, T* tile)
        where T : unmanaged, INumber<T>
    {
        switch (isa)
        {
            case GemmIsa.Avx512: K512(kc, a, b, boff, c, ldc, mr, nr, alpha, beta, overwrite, tile); break;
            case GemmIsa.Avx2: K256(kc, a, b, boff, c, ldc, mr, nr, alpha, beta, overwrite, tile); break;
            default: KPortable(kc, a, b, boff, c, ldc, mr, nr, alpha, beta, overwrite, tile); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Fma<T>(Vector512<T> a, Vector512<T> b, Vector512<T> c) where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return Vector512.FusedMultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>();
        return Vector512.FusedMultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<T> Fma<T>(Vector256<T> a, Vector256<T> b, Vector256<T> c) where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return Vector256.FusedMultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>();
        return Vector256.FusedMultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<T> Fma<T>(Vector<T> a, Vector<T> b, Vector<T> c) where T : unmanaged
    {
        // MultiplyAddEstimate fuses where the hardware can and falls back to multiply + add elsewhere.
        if (typeof(T) == typeof(float)) return Vector.MultiplyAddEstimate(a.As<T, float>(), b.As<T, float>(), c.As<T, float>()).As<float, T>();
        return Vector.MultiplyAddEstimate(a.As<T, double>(), b.As<T, double>(), c.As<T, double>()).As<double, T>();
    }

    // ---------------- AVX-512: 8 x 3 vectors ----------------

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void K512<T>(int kc, T* a, T* b, int* boff, T* c, int ldc, int mr, int nr, T alpha, T beta, bool overwrite, T* tile)
        where T : unmanaged, INumber<T>
    {
        int v = Vector512<T>.Count;
        var z = Vector512<T>.Zero;
        Vector512<T> c00 = z, c01 = z, c02 = z, c10 = z, c11 = z, c12 = z, c20 = z, c21 = z, c22 = z, c30 = z, c31 = z, c32 = z;
        Vector512<T> c40 = z, c41 = z, c42 = z, c50 = z, c51 = z, c52 = z, c60 = z, c61 = z, c62 = z, c70 = z, c71 = z, c72 = z;
        for (int k = 0; k < kc; k++)
        {
            T* bk = b + boff[k];
            var b0 = Vector512.Load(bk);
            var b1 = Vector512.Load(bk + v);
            var b2 = Vector512.Load(bk + 2 * v);
            var x = Vector512.Create(a[0]); c00 = Fma(x, b0, c00); c01 = Fma(x, b1, c01); c02 = Fma(x, b2, c02);
            x = Vector512.Create(a[1]); c10 = Fma(x, b0, c10); c11 = Fma(x, b1, c11); c12 = Fma(x, b2, c12);
            x = Vector512.Create(a[2]); c20 = Fma(x, b0, c20); c21 = Fma(x, b1, c21); c22 = Fma(x, b2, c22);
            x = Vector512.Create(a[3]); c30 = Fma(x, b0, c30); c31 = Fma(x, b1, c31); c32 = Fma(x, b2, c32);
            x = Vector512.Create(a[4]); c40 = Fma(x, b0, c40); c41 = Fma(x, b1, c41); c42 = Fma(x, b2, c42);
            x = Vector512.Create(a[5]); c50 = Fma(x, b0, c50); c51 = Fma(x, b1, c51); c52 = Fma(x, b2, c52);
            x = Vector512.Create(a[6]); c60 = Fma(x, b0, c60); c61 = Fma(x, b1, c61); c62 = Fma(x, b2, c62);
            x = Vector512.Create(a[7]); c70 = Fma(x, b0, c70); c71 = Fma(x, b1, c71); c72 = Fma(x, b2, c72);
            a += 8;
        }
        // No calls while the accumulators are live: every zmm register is caller-saved, so a
        // call here would make the JIT spill all 24 of them inside the loop.
        if (mr == 8 && nr == 3 * v)
        {
            Row3(c, c00, c01, c02, alpha, beta, overwrite); c += ldc;
            Row3(c, c10, c11, c12, alpha, beta, overwrite); c += ldc;
            Row3(c, c20, c21, c22, alpha, beta, overwrite); c += ldc;
            Row3(c, c30, c31, c32, alpha, beta, overwrite); c += ldc;
            Row3(c, c40, c41, c42, alpha, beta, overwrite); c += ldc;
            Row3(c, c50, c51, c52, alpha, beta, overwrite); c += ldc;
            Row3(c, c60, c61, c62, alpha, beta, overwrite); c += ldc;
            Row3(c, c70, c71, c72, alpha, beta, overwrite);
            return;
        }
        int ld = 3 * v;
        T* t = tile;
        c00.Store(t); c01.Store(t + v); c02.Store(t + 2 * v); t += ld;
        c10.Store(t); c11.Store(t + v); c12.Store(t + 2 * v); t += ld;
        c20.Store(t); c21.Store(t + v); c22.Store(t + 2 * v); t += ld;
        c30.Store(t); c31.Store(t + v); c32.Store(t + 2 * v); t += ld;
        c40.Store(t); c41.Store(t + v); c42.Store(t + 2 * v); t += ld;
        c50.Store(t); c51.Store(t + v); c52.Store(t + 2 * v); t += ld;
        c60.Store(t); c61.Store(t + v); c62.Store(t + 2 * v); t += ld;
        c70.Store(t); c71.Store(t + v); c72.Store(t + 2 * v);
        StoreTile(c, ldc, tile, ld, mr, nr, alpha, beta, overwrite);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Row3<T>(T* c, Vector512<T> x0, Vector512<T> x1, Vector512<T> x2, T alpha, T beta, bool overwrite)
        where T : unmanaged, INumber<T>
    {
        int v = Vector512<T>.Count;
        if (alpha != T.One)
        {
            var va = Vector512.Create(alpha);
            x0 *= va; x1 *= va; x2 *= va;
        }
        if (!overwrite)
        {
            if (beta == T.One)
            {
                x0 += Vector512.Load(c); x1 += Vector512.Load(c + v); x2 += Vector512.Load(c + 2 * v);
            }
            else
            {
                var vb = Vector512.Create(beta);
                x0 = Fma(vb, Vector512.Load(c), x0); x1 = Fma(vb, Vector512.Load(c + v), x1); x2 = Fma(vb, Vector512.Load(c + 2 * v), x2);
            }
        }
        x0.Store(c); x1.Store(c + v); x2.Store(c + 2 * v);
    }

    // ---------------- AVX2: 6 x 2 vectors ----------------

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void K256<T>(int kc, T* a, T* b, int* boff, T* c, int ldc, int mr, int nr, T alpha, T beta, bool overwrite, T* tile)
        where T : unmanaged, INumber<T>
    {
        int v = Vector256<T>.Count;
        var z = Vector256<T>.Zero;
        Vector256<T> c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z, c40 = z, c41 = z, c50 = z, c51 = z;
        for (int k = 0; k < kc; k++)
        {
            T* bk = b + boff[k];
            var b0 = Vector256.Load(bk);
            var b1 = Vector256.Load(bk + v);
            var x = Vector256.Create(a[0]); c00 = Fma(x, b0, c00); c01 = Fma(x, b1, c01);
            x = Vector256.Create(a[1]); c10 = Fma(x, b0, c10); c11 = Fma(x, b1, c11);
            x = Vector256.Create(a[2]); c20 = Fma(x, b0, c20); c21 = Fma(x, b1, c21);
            x = Vector256.Create(a[3]); c30 = Fma(x, b0, c30); c31 = Fma(x, b1, c31);
            x = Vector256.Create(a[4]); c40 = Fma(x, b0, c40); c41 = Fma(x, b1, c41);
            x = Vector256.Create(a[5]); c50 = Fma(x, b0, c50); c51 = Fma(x, b1, c51);
            a += 6;
        }
        if (mr == 6 && nr == 2 * v)
        {
            Row2(c, c00, c01, alpha, beta, overwrite); c += ldc;
            Row2(c, c10, c11, alpha, beta, overwrite); c += ldc;
            Row2(c, c20, c21, alpha, beta, overwrite); c += ldc;
            Row2(c, c30, c31, alpha, beta, overwrite); c += ldc;
            Row2(c, c40, c41, alpha, beta, overwrite); c += ldc;
            Row2(c, c50, c51, alpha, beta, overwrite);
            return;
        }
        int ld = 2 * v;
        T* t = tile;
        c00.Store(t); c01.Store(t + v); t += ld;
        c10.Store(t); c11.Store(t + v); t += ld;
        c20.Store(t); c21.Store(t + v); t += ld;
        c30.Store(t); c31.Store(t + v); t += ld;
        c40.Store(t); c41.Store(t + v); t += ld;
        c50.Store(t); c51.Store(t + v);
        StoreTile(c, ldc, tile, ld, mr, nr, alpha, beta, overwrite);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Row2<T>(T* c, Vector256<T> x0, Vector256<T> x1, T alpha, T beta, bool overwrite)
        where T : unmanaged, INumber<T>
    {
        int v = Vector256<T>.Count;
        if (alpha != T.One)
        {
            var va = Vector256.Create(alpha);
            x0 *= va; x1 *= va;
        }
        if (!overwrite)
        {
            var vb = Vector256.Create(beta);
            x0 = Fma(vb, Vector256.Load(c), x0); x1 = Fma(vb, Vector256.Load(c + v), x1);
        }
        x0.Store(c); x1.Store(c + v);
    }

    // ---------------- Portable: 4 x 2 Vector<T> ----------------

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void KPortable<T>(int kc, T* a, T* b, int* boff, T* c, int ldc, int mr, int nr, T alpha, T beta, bool overwrite, T* tile)
        where T : unmanaged, INumber<T>
    {
        int v = Vector<T>.Count;
        var z = Vector<T>.Zero;
        Vector<T> c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
        for (int k = 0; k < kc; k++)
        {
            T* bk = b + boff[k];
            var b0 = Vector.Load(bk);
            var b1 = Vector.Load(bk + v);
            var x = new Vector<T>(a[0]); c00 = Fma(x, b0, c00); c01 = Fma(x, b1, c01);
            x = new Vector<T>(a[1]); c10 = Fma(x, b0, c10); c11 = Fma(x, b1, c11);
            x = new Vector<T>(a[2]); c20 = Fma(x, b0, c20); c21 = Fma(x, b1, c21);
            x = new Vector<T>(a[3]); c30 = Fma(x, b0, c30); c31 = Fma(x, b1, c31);
            a += 4;
        }
        if (mr == 4 && nr == 2 * v)
        {
            RowV(c, c00, c01, alpha, beta, overwrite); c += ldc;
            RowV(c, c10, c11, alpha, beta, overwrite); c += ldc;
            RowV(c, c20, c21, alpha, beta, overwrite); c += ldc;
            RowV(c, c30, c31, alpha, beta, overwrite);
            return;
        }
        int ld = 2 * v;
        T* t = tile;
        c00.Store(t); c01.Store(t + v); t += ld;
        c10.Store(t); c11.Store(t + v); t += ld;
        c20.Store(t); c21.Store(t + v); t += ld;
        c30.Store(t); c31.Store(t + v);
        StoreTile(c, ldc, tile, ld, mr, nr, alpha, beta, overwrite);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RowV<T>(T* c, Vector<T> x0, Vector<T> x1, T alpha, T beta, bool overwrite)
        where T : unmanaged, INumber<T>
    {
        int v = Vector<T>.Count;
        if (alpha != T.One)
        {
            var va = new Vector<T>(alpha);
            x0 *= va; x1 *= va;
        }
        if (!overwrite)
        {
            var vb = new Vector<T>(beta);
            x0 = Fma(vb, Vector.Load(c), x0); x1 = Fma(vb, Vector.Load(c + v), x1);
        }
        x0.Store(c); x1.Store(c + v);
    }

    /// <summary>Edge tiles: the raw tile (leading dimension ld) is in memory; store its top-left mr x nr corner.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void StoreTile<T>(T* c, int ldc, T* tile, int ld, int mr, int nr, T alpha, T beta, bool overwrite)
        where T : unmanaged, INumber<T>
    {
        for (int i = 0; i < mr; i++)
        {
            T* ci = c + (long)i * ldc, ti = tile + i * ld;
            if (overwrite) for (int j = 0; j < nr; j++) ci[j] = alpha * ti[j];
            else for (int j = 0; j < nr; j++) ci[j] = alpha * ti[j] + beta * ci[j];
        }
    }
}
