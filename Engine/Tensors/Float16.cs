// Conversions between the 16-bit float types (BF16, F16) and float32 over whole spans, for the CPU
// backend's 16-bit paths (casts, the pointwise family, the F32 kernels wrapped for 16-bit tensors).
// Narrowing rounds to nearest even, exactly as the GPU does (Kernels/common.cuh: float_to_bf16 on
// the integer bits, cvt.rn.f16.f32 for half), so CPU and CUDA casts produce the same bits; NaN
// stays a quiet NaN with its sign. Widening is exact. BF16 is vectorised here (the top 16 bits of a
// float); F16 uses System.Numerics.Tensors' ConvertToHalf/ConvertToSingle (IEEE round to nearest even).
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace ResidualEngine;

public static unsafe class Float16
{
    /// <summary>True for the 16-bit float types (BF16 and F16).</summary>
    public static bool Is16Bit(this DType t) => t is DType.BF16 or DType.F16;

    public static void ToSingle(ReadOnlySpan<BFloat16> src, Span<float> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException("destination is shorter than the source", nameof(dst));
        var s = MemoryMarshal.Cast<BFloat16, ushort>(src);
        var d = MemoryMarshal.Cast<float, uint>(dst);
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            int w = Vector<ushort>.Count;
            for (; i <= s.Length - w; i += w)
            {
                Vector.Widen(new Vector<ushort>(s.Slice(i)), out var lo, out var hi);
                (lo << 16).CopyTo(d.Slice(i));
                (hi << 16).CopyTo(d.Slice(i + Vector<uint>.Count));
            }
        }
        for (; i < s.Length; i++) d[i] = (uint)s[i] << 16;
    }

    public static void FromSingle(ReadOnlySpan<float> src, Span<BFloat16> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException("destination is shorter than the source", nameof(dst));
        var s = MemoryMarshal.Cast<float, uint>(src);
        var d = MemoryMarshal.Cast<BFloat16, ushort>(dst);
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            int w = Vector<uint>.Count;
            for (; i <= s.Length - 2 * w; i += 2 * w)
                Vector.Narrow(Round(new Vector<uint>(s.Slice(i))), Round(new Vector<uint>(s.Slice(i + w)))).CopyTo(d.Slice(i));
        }
        for (; i < s.Length; i++) d[i] = ((BFloat16)BitConverter.UInt32BitsToSingle(s[i])).Bits;
    }

    /// <summary>Round to nearest even on the bits (the result's low 16 bits are the bfloat16); NaN becomes a quiet NaN.</summary>
    private static Vector<uint> Round(Vector<uint> u)
    {
        var nan = Vector.GreaterThan(u & new Vector<uint>(0x7FFFFFFFu), new Vector<uint>(0x7F800000u));
        var rounded = (u + new Vector<uint>(0x7FFFu) + ((u >> 16) & Vector<uint>.One)) >> 16;
        var quiet = (u >> 16) | new Vector<uint>(0x40u);
        return Vector.ConditionalSelect(nan, quiet, rounded);
    }

    public static void ToSingle(ReadOnlySpan<Half> src, Span<float> dst) => TensorPrimitives.ConvertToSingle(src, dst[..src.Length]);

    public static void FromSingle(ReadOnlySpan<float> src, Span<Half> dst) => TensorPrimitives.ConvertToHalf(src, dst[..src.Length]);

    /// <summary>n elements of a 16-bit tensor's memory at <paramref name="src"/> to floats.</summary>
    public static void ToSingle(DType t, void* src, float* dst, int n)
    {
        var d = new Span<float>(dst, n);
        switch (t)
        {
            case DType.BF16: ToSingle(new ReadOnlySpan<BFloat16>(src, n), d); break;
            case DType.F16: ToSingle(new ReadOnlySpan<Half>(src, n), d); break;
            case DType.F32: new ReadOnlySpan<float>(src, n).CopyTo(d); break;
            default: throw new NotSupportedException($"no float conversion for {t}");
        }
    }

    /// <summary>n floats into a 16-bit tensor's memory at <paramref name="dst"/> (rounded to nearest even).</summary>
    public static void FromSingle(DType t, float* src, void* dst, int n)
    {
        var s = new ReadOnlySpan<float>(src, n);
        switch (t)
        {
            case DType.BF16: FromSingle(s, new Span<BFloat16>(dst, n)); break;
            case DType.F16: FromSingle(s, new Span<Half>(dst, n)); break;
            case DType.F32: s.CopyTo(new Span<float>(dst, n)); break;
            default: throw new NotSupportedException($"no float conversion for {t}");
        }
    }

    /// <summary>A float rounded to the 16-bit type and back (what storing it in a BF16/F16 tensor keeps).</summary>
    public static float RoundTo(DType t, float v) => t switch
    {
        DType.BF16 => (float)(BFloat16)v,
        DType.F16 => (float)(Half)v,
        _ => v,
    };
}
