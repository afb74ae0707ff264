// The CPU reference backend: memory, copies, casts and elementwise ops. Other op families
// live in their own partial files (CpuConv, CpuBatchNorm, CpuPool, CpuDense, CpuLoss,
// CpuShortcut, CpuSgd), mirroring Backends/Cuda. F32 and F64 are supported throughout;
// F16/BF16 only for copies and casts.
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
        long n = src.Numel;
        // Go through double for generality; casts are not on hot paths.
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
            case DType.F16: { var d = (Half*)t.Pointer; for (long i = 0; i < n; i++) d[i] = (Half)v[i]; break; }
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
            case DType.F16: new Span<Half>((void*)dst.Pointer, checked((int)n)).Fill((Half)value); break;
            case DType.BF16: new Span<BFloat16>((void*)dst.Pointer, checked((int)n)).Fill((BFloat16)(float)value); break;
            case DType.U8: new Span<byte>((void*)dst.Pointer, checked((int)n)).Fill((byte)value); break;
            default: throw new NotSupportedException($"fill of {dst.DType}");
        }
    }

    public void Synchronize() { }

    // ---- elementwise ----

    /// <summary>Typed span over a CPU tensor's elements.</summary>
    internal static Span<T> S<T>(Tensor t) where T : unmanaged => new((void*)t.Pointer, checked((int)t.Numel));

    internal static void RequireFloat(Tensor t, string op)
    {
        if (t.DType is not (DType.F32 or DType.F64))
            throw new NotSupportedException($"{op} on the CPU supports F32 and F64, not {t.DType}");
    }

    public void Add(Tensor y, Tensor a, Tensor b)
    {
        RequireFloat(y, "Add");
        if (y.DType == DType.F32) TensorPrimitives.Add(S<float>(a), S<float>(b), S<float>(y));
        else TensorPrimitives.Add(S<double>(a), S<double>(b), S<double>(y));
    }

    public void Mul(Tensor y, Tensor a, Tensor b)
    {
        RequireFloat(y, "Mul");
        if (y.DType == DType.F32) TensorPrimitives.Multiply(S<float>(a), S<float>(b), S<float>(y));
        else TensorPrimitives.Multiply(S<double>(a), S<double>(b), S<double>(y));
    }

    public void AddRelu(Tensor y, Tensor a, Tensor b)
    {
        Add(y, a, b);
        ReluForward(y, y);
    }

    public void Axpby(Tensor y, double alpha, Tensor x, double beta)
    {
        RequireFloat(y, "Axpby");
        if (y.DType == DType.F32)
        {
            var ys = S<float>(y);
            if (beta == 0) TensorPrimitives.Multiply(S<float>(x), (float)alpha, ys);
            else
            {
                TensorPrimitives.Multiply(ys, (float)beta, ys);
                TensorPrimitives.MultiplyAdd(S<float>(x), (float)alpha, ys, ys);
            }
        }
        else
        {
            var ys = S<double>(y);
            if (beta == 0) TensorPrimitives.Multiply(S<double>(x), alpha, ys);
            else
            {
                TensorPrimitives.Multiply(ys, beta, ys);
                TensorPrimitives.MultiplyAdd(S<double>(x), alpha, ys, ys);
            }
        }
    }

    public void ReluForward(Tensor y, Tensor x)
    {
        RequireFloat(y, "Relu");
        if (y.DType == DType.F32) TensorPrimitives.Max(S<float>(x), 0f, S<float>(y));
        else TensorPrimitives.Max(S<double>(x), 0.0, S<double>(y));
    }

    public void ReluBackward(Tensor dX, Tensor dY, Tensor y)
    {
        RequireFloat(dX, "ReluBackward");
        if (dX.DType == DType.F32) ReluBackward<float>(dX.Pointer, dY.Pointer, y.Pointer, dX.Numel);
        else ReluBackward<double>(dX.Pointer, dY.Pointer, y.Pointer, dX.Numel);
    }

    // The gradient of every ReLU in a ResNet passes through here, so it is vectorised and split
    // across threads (a scalar loop on one core was ~20% of a CPU training step).
    private static void ReluBackward<T>(nint dxp, nint dyp, nint yp, long n) where T : unmanaged, System.Numerics.INumber<T>
    {
        CpuVec.Chunks(n, (start, len) =>
        {
            var dx = new Span<T>((T*)dxp + start, len);
            var dy = new ReadOnlySpan<T>((T*)dyp + start, len);
            var y = new ReadOnlySpan<T>((T*)yp + start, len);
            int i = 0;
            int w = System.Numerics.Vector<T>.Count;
            for (; i <= len - w; i += w)
            {
                var mask = System.Numerics.Vector.GreaterThan(new System.Numerics.Vector<T>(y.Slice(i, w)), System.Numerics.Vector<T>.Zero);
                System.Numerics.Vector.ConditionalSelect(mask, new System.Numerics.Vector<T>(dy.Slice(i, w)), System.Numerics.Vector<T>.Zero).CopyTo(dx.Slice(i, w));
            }
            for (; i < len; i++) dx[i] = y[i] > T.Zero ? dy[i] : T.Zero;
        });
    }

    public void SigmoidForward(Tensor y, Tensor x)
    {
        RequireFloat(y, "Sigmoid");
        if (y.DType == DType.F32) TensorPrimitives.Sigmoid(S<float>(x), S<float>(y));
        else TensorPrimitives.Sigmoid(S<double>(x), S<double>(y));
    }

    public void SigmoidBackward(Tensor dX, Tensor dY, Tensor y)
    {
        RequireFloat(dX, "SigmoidBackward");
        if (dX.DType == DType.F32) SigmoidBackward(S<float>(dX), S<float>(dY), S<float>(y));
        else SigmoidBackward(S<double>(dX), S<double>(dY), S<double>(y));
    }

    private static void SigmoidBackward<T>(Span<T> dx, Span<T> dy, Span<T> y) where T : unmanaged, System.Numerics.INumber<T>
    {
        for (int i = 0; i < dx.Length; i++) dx[i] = dy[i] * y[i] * (T.One - y[i]);
    }

    public void ScaleRowsForward(Tensor y, Tensor x, Tensor s)
    {
        RequireFloat(y, "ScaleRows");
        int m = checked((int)s.Numel), inner = checked((int)(x.Numel / m));
        if (y.DType == DType.F32)
        {
            var xs = S<float>(x); var ys = S<float>(y); var ss = S<float>(s);
            for (int r = 0; r < m; r++) TensorPrimitives.Multiply(xs.Slice(r * inner, inner), ss[r], ys.Slice(r * inner, inner));
        }
        else
        {
            var xs = S<double>(x); var ys = S<double>(y); var ss = S<double>(s);
            for (int r = 0; r < m; r++) TensorPrimitives.Multiply(xs.Slice(r * inner, inner), ss[r], ys.Slice(r * inner, inner));
        }
    }

    public void ScaleRowsBackward(Tensor? dX, Tensor? dS, Tensor dY, Tensor x, Tensor s)
    {
        RequireFloat(dY, "ScaleRowsBackward");
        int m = checked((int)s.Numel), inner = checked((int)(x.Numel / m));
        if (dY.DType == DType.F32)
        {
            var dys = S<float>(dY); var xs = S<float>(x); var ss = S<float>(s);
            for (int r = 0; r < m; r++)
            {
                var dyr = dys.Slice(r * inner, inner);
                if (dS is not null) S<float>(dS)[r] = TensorPrimitives.Dot(dyr, xs.Slice(r * inner, inner));
                if (dX is not null) TensorPrimitives.Multiply(dyr, ss[r], S<float>(dX).Slice(r * inner, inner));
            }
        }
        else
        {
            var dys = S<double>(dY); var xs = S<double>(x); var ss = S<double>(s);
            for (int r = 0; r < m; r++)
            {
                var dyr = dys.Slice(r * inner, inner);
                if (dS is not null) S<double>(dS)[r] = TensorPrimitives.Dot(dyr, xs.Slice(r * inner, inner));
                if (dX is not null) TensorPrimitives.Multiply(dyr, ss[r], S<double>(dX).Slice(r * inner, inner));
            }
        }
    }

    public void Sum(Tensor y, Tensor x)
    {
        RequireFloat(x, "Sum");
        if (x.DType == DType.F32)
        {
            // Accumulate in double so that large reductions stay accurate.
            double acc = 0;
            foreach (var v in S<float>(x)) acc += v;
            S<float>(y)[0] = (float)acc;
        }
        else S<double>(y)[0] = TensorPrimitives.Sum(S<double>(x));
    }
}
