// Inner-product micro-kernels: C[i, j] += sum_k A[i, k] * B[j, k] for a small DMR x DNR tile,
// where the rows of A and of B are both contiguous along k. This is the shape of the filter
// gradient dW = dY col^T (both operands are contiguous along the output pixels), where an
// outer-product kernel would first have to transpose both. Each accumulator is a vector over
// k, reduced to a scalar once at the end, so k should be long (hundreds) for the reductions
// to be cheap. kc must be a multiple of 16 (callers pad with zeros).
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ResidualEngine.Backends.Cpu;

internal static unsafe class DotKernels
{
    /// <summary>Tile rows (from A) and columns (from B) per instruction set.</summary>
    public static (int MR, int NR) TileShape(GemmIsa isa) => isa switch
    {
        GemmIsa.Avx512 => (4, 6),
        GemmIsa.Avx2 => (3, 3),
        _ => (2, 3),
    };

    /// <summary>Rows of A and B padded to a multiple of this many elements.</summary>
    public const int KAlign = 16;

    /// <summary>
    /// c[i * ldc + j] += sum over k &lt; kc of a[i * lda + k] * b[boff[j] + k], for i &lt; mr, j &lt; nr.
    /// Rows past mr / nr are not read. B rows are addressed through offsets so that they can be
    /// rows of a dense buffer (boff[j] = j * ld) or shifted rows of a padded image.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Run<T>(GemmIsa isa, int kc, T* a, int lda, T* b, int* boff, T* c, int ldc, int mr, int nr)
        where T : unmanaged, INumber<T>
    {
        switch (isa)
        {
            case GemmIsa.Avx512: D512(kc, a, lda, b, boff, c, ldc, mr, nr); break;
            case GemmIsa.Avx2: D256(kc, a, lda, b, boff, c, ldc, mr, nr); break;
            default: DPortable(kc, a, lda, b, boff, c, ldc, mr, nr); break;
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
        if (typeof(T) == typeof(float)) return Vector.MultiplyAddEstimate(a.As<T, float>(), b.As<T, float>(), c.As<T, float>()).As<float, T>();
        return Vector.MultiplyAddEstimate(a.As<T, double>(), b.As<T, double>(), c.As<T, double>()).As<double, T>();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static T* Row<T>(T* p, int ld, int i, int count) where T : unmanaged => p + (i < count ? i : 0) * (nint)ld;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static T* Row<T>(T* p, int* off, int i, int count) where T : unmanaged => p + off[i < count ? i : 0];

    // ---------------- AVX-512: 4 x 6 ----------------

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void D512<T>(int kc, T* a, int lda, T* b, int* boff, T* c, int ldc, int mr, int nr) where T : unmanaged, INumber<T>
    {
        int v = Vector512<T>.Count;
        // Missing rows read row 0 again; their sums are computed and dropped.
        T* a0 = a, a1 = Row(a, lda, 1, mr), a2 = Row(a, lda, 2, mr), a3 = Row(a, lda, 3, mr);
        T* b0 = b + boff[0], b1 = Row(b, boff, 1, nr), b2 = Row(b, boff, 2, nr), b3 = Row(b, boff, 3, nr), b4 = Row(b, boff, 4, nr), b5 = Row(b, boff, 5, nr);
        var z = Vector512<T>.Zero;
        Vector512<T> s00 = z, s01 = z, s02 = z, s03 = z, s04 = z, s05 = z, s10 = z, s11 = z, s12 = z, s13 = z, s14 = z, s15 = z;
        Vector512<T> s20 = z, s21 = z, s22 = z, s23 = z, s24 = z, s25 = z, s30 = z, s31 = z, s32 = z, s33 = z, s34 = z, s35 = z;
        for (int k = 0; k < kc; k += v)
        {
            var x0 = Vector512.Load(a0 + k);
            var x1 = Vector512.Load(a1 + k);
            var x2 = Vector512.Load(a2 + k);
            var x3 = Vector512.Load(a3 + k);
            var y = Vector512.Load(b0 + k); s00 = Fma(x0, y, s00); s10 = Fma(x1, y, s10); s20 = Fma(x2, y, s20); s30 = Fma(x3, y, s30);
            y = Vector512.Load(b1 + k); s01 = Fma(x0, y, s01); s11 = Fma(x1, y, s11); s21 = Fma(x2, y, s21); s31 = Fma(x3, y, s31);
            y = Vector512.Load(b2 + k); s02 = Fma(x0, y, s02); s12 = Fma(x1, y, s12); s22 = Fma(x2, y, s22); s32 = Fma(x3, y, s32);
            y = Vector512.Load(b3 + k); s03 = Fma(x0, y, s03); s13 = Fma(x1, y, s13); s23 = Fma(x2, y, s23); s33 = Fma(x3, y, s33);
            y = Vector512.Load(b4 + k); s04 = Fma(x0, y, s04); s14 = Fma(x1, y, s14); s24 = Fma(x2, y, s24); s34 = Fma(x3, y, s34);
            y = Vector512.Load(b5 + k); s05 = Fma(x0, y, s05); s15 = Fma(x1, y, s15); s25 = Fma(x2, y, s25); s35 = Fma(x3, y, s35);
        }
        if (mr == 4)
        {
            // Full height: reduce the four rows of each column together (horizontal adds).
            AddColumn(c, ldc, s00, s10, s20, s30);
            if (nr > 1) AddColumn(c + 1, ldc, s01, s11, s21, s31);
            if (nr > 2) AddColumn(c + 2, ldc, s02, s12, s22, s32);
            if (nr > 3) AddColumn(c + 3, ldc, s03, s13, s23, s33);
            if (nr > 4) AddColumn(c + 4, ldc, s04, s14, s24, s34);
            if (nr > 5) AddColumn(c + 5, ldc, s05, s15, s25, s35);
            return;
        }
        Add6(c, s00, s01, s02, s03, s04, s05, nr);
        if (mr > 1) Add6(c + ldc, s10, s11, s12, s13, s14, s15, nr);
        if (mr > 2) Add6(c + 2 * ldc, s20, s21, s22, s23, s24, s25, nr);
    }

    /// <summary>c[i * ldc] += sum of x_i for i &lt; 4, with the four reductions interleaved.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddColumn<T>(T* c, int ldc, Vector512<T> x0, Vector512<T> x1, Vector512<T> x2, Vector512<T> x3)
        where T : unmanaged, INumber<T>
    {
        var t0 = x0.GetLower() + x0.GetUpper();
        var t1 = x1.GetLower() + x1.GetUpper();
        var t2 = x2.GetLower() + x2.GetUpper();
        var t3 = x3.GetLower() + x3.GetUpper();
        if (typeof(T) == typeof(float))
        {
            var h = Avx.HorizontalAdd(Avx.HorizontalAdd(t0.AsSingle(), t1.AsSingle()), Avx.HorizontalAdd(t2.AsSingle(), t3.AsSingle()));
            var r = (h.GetLower() + h.GetUpper()).As<float, T>(); // [sum x0, sum x1, sum x2, sum x3]
            c[0] += r.GetElement(0);
            c[ldc] += r.GetElement(1);
            c[2 * ldc] += r.GetElement(2);
            c[3 * ldc] += r.GetElement(3);
        }
        else
        {
            var h01 = Avx.HorizontalAdd(t0.AsDouble(), t1.AsDouble());
            var h23 = Avx.HorizontalAdd(t2.AsDouble(), t3.AsDouble());
            var r01 = (h01.GetLower() + h01.GetUpper()).As<double, T>(); // [sum x0, sum x1]
            var r23 = (h23.GetLower() + h23.GetUpper()).As<double, T>();
            c[0] += r01.GetElement(0);
            c[ldc] += r01.GetElement(1);
            c[2 * ldc] += r23.GetElement(0);
            c[3 * ldc] += r23.GetElement(1);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Add6<T>(T* c, Vector512<T> x0, Vector512<T> x1, Vector512<T> x2, Vector512<T> x3, Vector512<T> x4, Vector512<T> x5, int nr)
        where T : unmanaged, INumber<T>
    {
        c[0] += Vector256.Sum(x0.GetLower() + x0.GetUpper());
        if (nr > 1) c[1] += Vector256.Sum(x1.GetLower() + x1.GetUpper());
        if (nr > 2) c[2] += Vector256.Sum(x2.GetLower() + x2.GetUpper());
        if (nr > 3) c[3] += Vector256.Sum(x3.GetLower() + x3.GetUpper());
        if (nr > 4) c[4] += Vector256.Sum(x4.GetLower() + x4.GetUpper());
        if (nr > 5) c[5] += Vector256.Sum(x5.GetLower() + x5.GetUpper());
    }

    // ---------------- AVX2: 3 x 3 ----------------

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void D256<T>(int kc, T* a, int lda, T* b, int* boff, T* c, int ldc, int mr, int nr) where T : unmanaged, INumber<T>
    {
        int v = Vector256<T>.Count;
        T* a0 = a, a1 = Row(a, lda, 1, mr), a2 = Row(a, lda, 2, mr);
        T* b0 = b + boff[0], b1 = Row(b, boff, 1, nr), b2 = Row(b, boff, 2, nr);
        var z = Vector256<T>.Zero;
        Vector256<T> s00 = z, s01 = z, s02 = z, s10 = z, s11 = z, s12 = z, s20 = z, s21 = z, s22 = z;
        for (int k = 0; k < kc; k += v)
        {
            var x0 = Vector256.Load(a0 + k);
            var x1 = Vector256.Load(a1 + k);
            var x2 = Vector256.Load(a2 + k);
            var y = Vector256.Load(b0 + k); s00 = Fma(x0, y, s00); s10 = Fma(x1, y, s10); s20 = Fma(x2, y, s20);
            y = Vector256.Load(b1 + k); s01 = Fma(x0, y, s01); s11 = Fma(x1, y, s11); s21 = Fma(x2, y, s21);
            y = Vector256.Load(b2 + k); s02 = Fma(x0, y, s02); s12 = Fma(x1, y, s12); s22 = Fma(x2, y, s22);
        }
        Add3(c, s00, s01, s02, nr);
        if (mr > 1) Add3(c + ldc, s10, s11, s12, nr);
        if (mr > 2) Add3(c + 2 * ldc, s20, s21, s22, nr);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Add3<T>(T* c, Vector256<T> x0, Vector256<T> x1, Vector256<T> x2, int nr) where T : unmanaged, INumber<T>
    {
        c[0] += Vector256.Sum(x0);
        if (nr > 1) c[1] += Vector256.Sum(x1);
        if (nr > 2) c[2] += Vector256.Sum(x2);
    }

    // ---------------- Portable: 2 x 3 ----------------

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void DPortable<T>(int kc, T* a, int lda, T* b, int* boff, T* c, int ldc, int mr, int nr) where T : unmanaged, INumber<T>
    {
        int v = Vector<T>.Count;
        T* a0 = a, a1 = Row(a, lda, 1, mr);
        T* b0 = b + boff[0], b1 = Row(b, boff, 1, nr), b2 = Row(b, boff, 2, nr);
        var z = Vector<T>.Zero;
        Vector<T> s00 = z, s01 = z, s02 = z, s10 = z, s11 = z, s12 = z;
        for (int k = 0; k < kc; k += v)
        {
            var x0 = Vector.Load(a0 + k);
            var x1 = Vector.Load(a1 + k);
            var y = Vector.Load(b0 + k); s00 = Fma(x0, y, s00); s10 = Fma(x1, y, s10);
            y = Vector.Load(b1 + k); s01 = Fma(x0, y, s01); s11 = Fma(x1, y, s11);
            y = Vector.Load(b2 + k); s02 = Fma(x0, y, s02); s12 = Fma(x1, y, s12);
        }
        c[0] += Vector.Sum(s00);
        if (nr > 1) c[1] += Vector.Sum(s01);
        if (nr > 2) c[2] += Vector.Sum(s02);
        if (mr > 1)
        {
            c[ldc] += Vector.Sum(s10);
            if (nr > 1) c[ldc + 1] += Vector.Sum(s11);
            if (nr > 2) c[ldc + 2] += Vector.Sum(s12);
        }
    }
}
