// The CPU reference backend: memory, copies, casts and elementwise ops. Other op families
// live in their own partial files (CpuConv, CpuBatchNorm, CpuPool, CpuDense, CpuLoss,
// CpuShortcut, CpuSgd), mirroring Backends/Cuda. The kernels are F32 and F64 NCHW; BF16/F16 and
// channels-last operands run through conversions around them (CpuMixed.cs, CpuPointwise16.cs).
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace ResidualEngine.Backends.Cpu;

public sealed unsafe partial class CpuBackend : IBackend
{
    public static readonly CpuBackend Instance = new();
    private CpuBackend() { }

    public Device Device => Device.Cpu;

    public Storage Allocate(long bytes) => new CpuStorage(bytes);

    public void CopyFromHost(Tensor dst, ReadOnlySpan<byte> src)
    {
        if (src.Length != dst.Bytes) throw new ArgumentException($"host buffer of {src.Length} bytes for a tensor of {dst.Bytes} bytes");
        src.CopyTo(dst.HostSpan());
    }

    public void CopyToHost(Tensor src, Span<byte> dst)
    {
        if (dst.Length != src.Bytes) throw new ArgumentException($"host buffer of {dst.Length} bytes for a tensor of {src.Bytes} bytes");
        src.HostSpan().CopyTo(dst);
    }

    public void Copy(Tensor dst, Tensor src)
    {
        if (dst.Bytes != src.Bytes) throw new ArgumentException($"copy of {src.Describe()} into {dst.Describe()}: sizes differ");
        Buffer.MemoryCopy((void*)src.Pointer, (void*)dst.Pointer, dst.Bytes, src.Bytes);
    }

    public void Cast(Tensor dst, Tensor src)
    {
        if (dst.Numel != src.Numel) throw new ArgumentException($"cast of {src.Describe()} into {dst.Describe()}: element counts differ");
        if (CastFloat16(dst, src)) return;
        long n = src.Numel;
        // Go through double for generality; casts are not on hot paths. Into 16-bit types the value
        // goes through float first, as the GPU's cast kernel does, so both round alike.
        var tmp = new double[n];
        Read(src, tmp);
        Write(dst, tmp);
    }

    private static void Read(Tensor t, double[] v)
    {
        long n = v.LongLength;
        switch (t.DType)
        {
            case DType.F32: { var s = (float*)t.Pointer; for (long i = 0; i < n; i++) v[i] = s[i]; break; }
            case DType.F64: { var s = (double*)t.Pointer; for (long i = 0; i < n; i++) v[i] = s[i]; break; }
            case DType.F16: { var s = (Half*)t.Pointer; for (long i = 0; i < n; i++) v[i] = (double)s[i]; break; }
            case DType.BF16: { var s = (BFloat16*)t.Pointer; for (long i = 0; i < n; i++) v[i] = (float)s[i]; break; }
            case DType.I64: { var s = (long*)t.Pointer; for (long i = 0; i < n; i++) v[i] = s[i]; break; }
            case DType.I32: { var s = (int*)t.Pointer; for (long i = 0; i < n; i++) v[i] = s[i]; break; }
            case DType.U8: { var s = (byte*)t.Pointer; for (long i = 0; i < n; i++) v[i] = s[i]; break; }
            default: throw new NotSupportedException($"cast from {t.DType}");
        }
    }

    private static void Write(Tensor t, double[] v)
    {
        long n = v.LongLength;
        switch (t.DType)
        {
            case DType.F32: { var d = (float*)t.Pointer; for (long i = 0; i < n; i++) d[i] = (float)v[i]; break; }
            case DType.F64: { var d = (double*)t.Pointer; for (long i = 0; i < n; i++) d[i] = v[i]; break; }
            case DType.F16: { var d = (Half*)t.Pointer; for (long i = 0; i < n; i++) d[i] = (Half)(float)v[i]; break; }
            case DType.BF16: { var d = (BFloat16*)t.Pointer; for (long i = 0; i < n; i++) d[i] = (BFloat16)(float)v[i]; break; }
            case DType.I64: { var d = (long*)t.Pointer; for (long i = 0; i < n; i++) d[i] = (long)v[i]; break; }
            case DType.I32: { var d = (int*)t.Pointer; for (long i = 0; i < n; i++) d[i] = (int)v[i]; break; }
            case DType.U8: { var d = (byte*)t.Pointer; for (long i = 0; i < n; i++) d[i] = (byte)v[i]; break; }
            default: throw new NotSupportedException($"cast to {t.DType}");
        }
    }

    public void Fill(Tensor dst, double value)
    {
        long n = dst.Numel;
        switch (dst.DType)
        {
            case DType.F32: new Span<float>((void*)dst.Pointer, checked((int)n)).Fill((float)value); break;
            case DType.F64: new Span<double>((void*)dst.Pointer, checked((int)n)).Fill(value); break;
            case DType.I64: new Span<long>((void*)dst.Pointer, checked((int)n)).Fill((long)value); break;
            case DType.I32: new Span<int>((void*)dst.Pointer, checked((int)n)).Fill((int)value); break;
            case DType.F16: new Span<Half>((void*)dst.Pointer, checked((int)n)).Fill((Half)(float)value); break;
            case DType.BF16: new Span<BFloat16>((void*)dst.Pointer, checked((int)n)).Fill((BFloat16)(float)value); break;
            case DType.U8: new Span<byte>((void*)dst.Pointer, checked((int)n)).Fill((byte)value); break;
            default: throw new NotSupportedException($"fill of {dst.DType}");
        }
    }

    public void Synchronize() { }

    // ---- helpers for the partial files ----

    /// <summary>Typed span over a CPU tensor's elements.</summary>
    internal static Span<T> S<T>(Tensor t) where T : unmanaged => new((void*)t.Pointer, checked((int)t.Numel));

    internal static void RequireFloat(Tensor t, string op)
    {
        if (t.DType is not (DType.F32 or DType.F64))
            throw new NotSupportedException($"{op} on the CPU supports F32 and F64, not {t.DType}");
    }

}
