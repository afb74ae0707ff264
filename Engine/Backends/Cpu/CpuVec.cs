// Small SIMD loops and a work-size-aware parallel loop shared by the CPU batch-norm, pooling,
// loss, shortcut and SGD kernels. Reductions over F32 data widen to double lanes, so channel
// statistics over millions of elements stay accurate (the CPU backend is the reference). The
// loops are compiled fully optimised at once (no tier-0 pass), since each call is a long loop.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ResidualEngine.Backends.Cpu;

internal static class CpuVec
{
    // Below this many element-operations in total, starting threads costs more than it saves.
    private const long MinWorkForThreads = 1 << 15;

    /// <summary>Runs body(0 .. count-1), on the thread pool when the total work is large enough.</summary>
    public static void For(int count, long workPerItem, Action<int> body)
    {
        if (count <= 1 || (long)count * workPerItem < MinWorkForThreads)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        CpuWorkers.Run(count, CpuBackend.Threads, (i, _) => body(i));
    }

    /// <summary>Splits [0, n) into chunks and runs body(start, length) on each, in parallel for large n.</summary>
    public static void Chunks(long n, Action<int, int> body)
    {
        const int chunk = 1 << 16;
        int count = checked((int)((n + chunk - 1) / chunk));
        For(count, chunk, i =>
        {
            int start = i * chunk;
            body(start, (int)Math.Min(chunk, n - start));
        });
    }

    /// <summary>Sum of v, accumulated in double.</summary>
    public static double Sum<T>(ReadOnlySpan<T> v) where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return Sum(MemoryMarshal.Cast<T, float>(v));
        return Sum(MemoryMarshal.Cast<T, double>(v));
    }

    /// <summary>Sum of (v - m)^2, accumulated in double.</summary>
    public static double SumSqDiff<T>(ReadOnlySpan<T> v, double m) where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return SumSqDiff(MemoryMarshal.Cast<T, float>(v), m);
        return SumSqDiff(MemoryMarshal.Cast<T, double>(v), m);
    }

    /// <summary>Sum of a * (b - m), accumulated in double.</summary>
    public static double DotDiff<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, double m) where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return DotDiff(MemoryMarshal.Cast<T, float>(a), MemoryMarshal.Cast<T, float>(b), m);
        return DotDiff(MemoryMarshal.Cast<T, double>(a), MemoryMarshal.Cast<T, double>(b), m);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double Sum(ReadOnlySpan<float> v)
    {
        var a0 = Vector<double>.Zero;
        var a1 = Vector<double>.Zero;
        int i = 0, w = Vector<float>.Count;
        for (; i <= v.Length - w; i += w)
        {
            Vector.Widen(new Vector<float>(v.Slice(i)), out var lo, out var hi);
            a0 += lo;
            a1 += hi;
        }
        double s = Vector.Sum(a0 + a1);
        for (; i < v.Length; i++) s += v[i];
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double Sum(ReadOnlySpan<double> v)
    {
        var a0 = Vector<double>.Zero;
        int i = 0, w = Vector<double>.Count;
        for (; i <= v.Length - w; i += w) a0 += new Vector<double>(v.Slice(i));
        double s = Vector.Sum(a0);
        for (; i < v.Length; i++) s += v[i];
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double SumSqDiff(ReadOnlySpan<float> v, double m)
    {
        var a0 = Vector<double>.Zero;
        var a1 = Vector<double>.Zero;
        var vm = new Vector<double>(m);
        int i = 0, w = Vector<float>.Count;
        for (; i <= v.Length - w; i += w)
        {
            Vector.Widen(new Vector<float>(v.Slice(i)), out var lo, out var hi);
            lo -= vm;
            hi -= vm;
            a0 += lo * lo;
            a1 += hi * hi;
        }
        double s = Vector.Sum(a0 + a1);
        for (; i < v.Length; i++) { double d = v[i] - m; s += d * d; }
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double SumSqDiff(ReadOnlySpan<double> v, double m)
    {
        var a0 = Vector<double>.Zero;
        var vm = new Vector<double>(m);
        int i = 0, w = Vector<double>.Count;
        for (; i <= v.Length - w; i += w)
        {
            var d = new Vector<double>(v.Slice(i)) - vm;
            a0 += d * d;
        }
        double s = Vector.Sum(a0);
        for (; i < v.Length; i++) { double d = v[i] - m; s += d * d; }
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double DotDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b, double m)
    {
        var a0 = Vector<double>.Zero;
        var a1 = Vector<double>.Zero;
        var vm = new Vector<double>(m);
        int i = 0, w = Vector<float>.Count;
        for (; i <= a.Length - w; i += w)
        {
            Vector.Widen(new Vector<float>(a.Slice(i)), out var alo, out var ahi);
            Vector.Widen(new Vector<float>(b.Slice(i)), out var blo, out var bhi);
            a0 += alo * (blo - vm);
            a1 += ahi * (bhi - vm);
        }
        double s = Vector.Sum(a0 + a1);
        for (; i < a.Length; i++) s += a[i] * (b[i] - m);
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double DotDiff(ReadOnlySpan<double> a, ReadOnlySpan<double> b, double m)
    {
        var a0 = Vector<double>.Zero;
        var vm = new Vector<double>(m);
        int i = 0, w = Vector<double>.Count;
        for (; i <= a.Length - w; i += w) a0 += new Vector<double>(a.Slice(i)) * (new Vector<double>(b.Slice(i)) - vm);
        double s = Vector.Sum(a0);
        for (; i < a.Length; i++) s += a[i] * (b[i] - m);
        return s;
    }

    /// <summary>y = x * a + b (y may alias x).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Affine<T>(ReadOnlySpan<T> x, T a, T b, Span<T> y) where T : unmanaged, INumber<T>
    {
        var va = new Vector<T>(a);
        var vb = new Vector<T>(b);
        int i = 0, w = Vector<T>.Count;
        for (; i <= x.Length - w; i += w) (new Vector<T>(x.Slice(i)) * va + vb).CopyTo(y.Slice(i));
        for (; i < x.Length; i++) y[i] = x[i] * a + b;
    }

    /// <summary>y = dy * a + (x - m) * b + c: the batch-norm input gradient for one plane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void BnGrad<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, T a, T m, T b, T c, Span<T> y) where T : unmanaged, INumber<T>
    {
        var va = new Vector<T>(a);
        var vm = new Vector<T>(m);
        var vb = new Vector<T>(b);
        var vc = new Vector<T>(c);
        int i = 0, w = Vector<T>.Count;
        for (; i <= x.Length - w; i += w)
            (new Vector<T>(dy.Slice(i)) * va + (new Vector<T>(x.Slice(i)) - vm) * vb + vc).CopyTo(y.Slice(i));
        for (; i < x.Length; i++) y[i] = dy[i] * a + (x[i] - m) * b + c;
    }
}
