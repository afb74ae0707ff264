// Short copies and fills for packing (tens of elements at a time, called millions of times per
// convolution): whole vectors plus one overlapping vector for the tail, with no call into
// memmove. Source and destination must not overlap.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

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
}
