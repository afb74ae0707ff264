// Short copies and fills for packing (tens of elements at a time, called millions of times per
// convolution): whole vectors plus one overlapping vector for the tail, with no call into
// memmove. Source and destination must not overlap.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ResidualEngine.Backends.Cpu;

internal static unsafe class VecCopy
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Copy<T>(T* dst, T* src, int n) where T : unmanaged
    {
        if (Vector512.IsHardwareAccelerated && n >= Vector512<T>.Count)
        {
            int v = Vector512<T>.Count, t = 0;
            for (; t <= n - v; t += v) Vector512.Load(src + t).Store(dst + t);
            if (t < n) Vector512.Load(src + n - v).Store(dst + n - v);
            return;
        }
        if (Vector256.IsHardwareAccelerated && n >= Vector256<T>.Count)
        {
            int v = Vector256<T>.Count, t = 0;
            for (; t <= n - v; t += v) Vector256.Load(src + t).Store(dst + t);
            if (t < n) Vector256.Load(src + n - v).Store(dst + n - v);
            return;
        }
        if (Vector128.IsHardwareAccelerated && n >= Vector128<T>.Count)
        {
            int v = Vector128<T>.Count, t = 0;
            for (; t <= n - v; t += v) Vector128.Load(src + t).Store(dst + t);
            if (t < n) Vector128.Load(src + n - v).Store(dst + n - v);
            return;
        }
        for (int t = 0; t < n; t++) dst[t] = src[t];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Zero<T>(T* dst, int n) where T : unmanaged
    {
        if (Vector512.IsHardwareAccelerated && n >= Vector512<T>.Count)
        {
            int v = Vector512<T>.Count, t = 0;
            for (; t <= n - v; t += v) Vector512<T>.Zero.Store(dst + t);
            if (t < n) Vector512<T>.Zero.Store(dst + n - v);
            return;
        }
        if (Vector256.IsHardwareAccelerated && n >= Vector256<T>.Count)
        {
            int v = Vector256<T>.Count, t = 0;
            for (; t <= n - v; t += v) Vector256<T>.Zero.Store(dst + t);
            if (t < n) Vector256<T>.Zero.Store(dst + n - v);
            return;
        }
        for (int t = 0; t < n; t++) dst[t] = default;
    }

    /// <summary>dst[i] += src[i] for i &lt; n (no overlapping tail: a sum must not be applied twice).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Add<T>(T* dst, T* src, int n) where T : unmanaged, INumber<T>
    {
        int t = 0;
        if (Vector512.IsHardwareAccelerated)
            for (int v = Vector512<T>.Count; t <= n - v; t += v) (Vector512.Load(dst + t) + Vector512.Load(src + t)).Store(dst + t);
        else if (Vector256.IsHardwareAccelerated)
            for (int v = Vector256<T>.Count; t <= n - v; t += v) (Vector256.Load(dst + t) + Vector256.Load(src + t)).Store(dst + t);
        for (; t < n; t++) dst[t] += src[t];
    }

    /// <summary>even[j] = src[2j] for j &lt; ceil(n/2), odd[j] = src[2j + 1] for j &lt; floor(n/2): one row of a stride-2 phase split.</summary>
    public static void Deinterleave2<T>(T* even, T* odd, T* src, int n) where T : unmanaged
    {
        int j = 0;
        if (Avx512F.IsSupported)
        {
            if (typeof(T) == typeof(float))
            {
                var ie = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
                var io = ie + Vector512<int>.One;
                // 16 outputs of each phase read src[2j .. 2j + 31].
                for (; 2 * j + 32 <= n; j += 16)
                {
                    var lo = Vector512.Load((float*)src + 2 * j);
                    var hi = Vector512.Load((float*)src + 2 * j + 16);
                    Avx512F.PermuteVar16x32x2(lo, ie, hi).Store((float*)even + j);
                    Avx512F.PermuteVar16x32x2(lo, io, hi).Store((float*)odd + j);
                }
            }
            else if (typeof(T) == typeof(double))
            {
                var ie = Vector512.Create(0L, 2, 4, 6, 8, 10, 12, 14);
                var io = ie + Vector512<long>.One;
                for (; 2 * j + 16 <= n; j += 8)
                {
                    var lo = Vector512.Load((double*)src + 2 * j);
                    var hi = Vector512.Load((double*)src + 2 * j + 8);
                    Avx512F.PermuteVar8x64x2(lo, ie, hi).Store((double*)even + j);
                    Avx512F.PermuteVar8x64x2(lo, io, hi).Store((double*)odd + j);
                }
            }
        }
        for (; 2 * j < n; j++)
        {
            even[j] = src[2 * j];
            if (2 * j + 1 < n) odd[j] = src[2 * j + 1];
        }
    }

    /// <summary>dst[j] = src[2j] for j &lt; count, reading no further than src[n - 1] (2 * count - 1 &lt;= n).</summary>
    public static void Deinterleave2Even<T>(T* dst, T* src, int count, int n) where T : unmanaged
    {
        int j = 0;
        if (Avx512F.IsSupported)
        {
            if (typeof(T) == typeof(float))
            {
                var ie = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
                for (; j + 16 <= count && 2 * j + 32 <= n; j += 16)
                    Avx512F.PermuteVar16x32x2(Vector512.Load((float*)src + 2 * j), ie, Vector512.Load((float*)src + 2 * j + 16)).Store((float*)dst + j);
            }
            else if (typeof(T) == typeof(double))
            {
                var ie = Vector512.Create(0L, 2, 4, 6, 8, 10, 12, 14);
                for (; j + 8 <= count && 2 * j + 16 <= n; j += 8)
                    Avx512F.PermuteVar8x64x2(Vector512.Load((double*)src + 2 * j), ie, Vector512.Load((double*)src + 2 * j + 8)).Store((double*)dst + j);
            }
        }
        for (; j < count; j++) dst[j] = src[2 * j];
    }

    /// <summary>dst[2j] = even[j] for j &lt; ceil(n/2), dst[2j + 1] = odd[j] for j &lt; floor(n/2): the inverse of Deinterleave2.</summary>
    public static void Interleave2<T>(T* dst, T* even, T* odd, int n) where T : unmanaged
    {
        int j = 0;
        if (Avx512F.IsSupported)
        {
            if (typeof(T) == typeof(float))
            {
                var il = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
                var ih = il + Vector512.Create(8);
                for (; 2 * j + 32 <= n; j += 16)
                {
                    var e = Vector512.Load((float*)even + j);
                    var o = Vector512.Load((float*)odd + j);
                    Avx512F.PermuteVar16x32x2(e, il, o).Store((float*)dst + 2 * j);
                    Avx512F.PermuteVar16x32x2(e, ih, o).Store((float*)dst + 2 * j + 16);
                }
            }
            else if (typeof(T) == typeof(double))
            {
                var il = Vector512.Create(0L, 8, 1, 9, 2, 10, 3, 11);
                var ih = il + Vector512.Create(4L);
                for (; 2 * j + 16 <= n; j += 8)
                {
                    var e = Vector512.Load((double*)even + j);
                    var o = Vector512.Load((double*)odd + j);
                    Avx512F.PermuteVar8x64x2(e, il, o).Store((double*)dst + 2 * j);
                    Avx512F.PermuteVar8x64x2(e, ih, o).Store((double*)dst + 2 * j + 8);
                }
            }
        }
        for (; 2 * j < n; j++)
        {
            dst[2 * j] = even[j];
            if (2 * j + 1 < n) dst[2 * j + 1] = odd[j];
        }
    }
}
