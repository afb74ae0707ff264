// The pointwise family on BF16/F16 tensors: each chunk is widened to float, the op's own F32 code
// runs on it (its span form when it has one, else the scalar form), and the result is rounded back
// to nearest even. That is what the CUDA kernels do per element (load_c/store_c in common.cuh), so
// arithmetic happens in F32 on both backends and no op struct changes. A broadcast operand is
// widened once (it is small) and expanded per chunk. Chunks run on CpuBackend.Threads threads.
using System.Buffers;
using ResidualEngine.Pointwise;

namespace ResidualEngine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    private static void Unary16<TOp>(Tensor y, Tensor x, float alpha, float beta) where TOp : struct, IUnaryOp
    {
        DType dt = y.DType;
        nint py = y.Pointer, px = x.Pointer;
        int es = dt.Size();
        Chunked(y.Numel, (s, len) =>
        {
            var buf = ArrayPool<float>.Shared.Rent(len);
            try
            {
                var v = buf.AsSpan(0, len);
                fixed (float* f = buf) Float16.ToSingle(dt, (byte*)px + s * es, f, len);
                if (!TOp.Apply<float>(v, v, alpha, beta))
                    for (int i = 0; i < len; i++) v[i] = TOp.Apply(v[i], alpha, beta);
                fixed (float* f = buf) Float16.FromSingle(dt, f, (byte*)py + s * es, len);
            }
            finally { ArrayPool<float>.Shared.Return(buf); }
        });
    }

    private static void Binary16<TOp>(Tensor y, Tensor a, Tensor b, Broadcast bc, float alpha, float beta) where TOp : struct, IBinaryOp
    {
        DType dt = y.DType;
        nint py = y.Pointer, pa = a.Pointer, pb = b.Pointer;
        int es = dt.Size();
        long n = y.Numel;
        bool same = bc.IsElementwise(n);
        // A broadcast b has Period elements: widen it once.
        float[]? bw = null;
        if (!same)
        {
            bw = new float[checked((int)bc.Period)];
            fixed (float* f = bw) Float16.ToSingle(dt, (void*)pb, f, bw.Length);
        }
        long inner = bc.Inner, period = bc.Period;
        Chunked(n, (s, len) =>
        {
            var ab = ArrayPool<float>.Shared.Rent(len);
            var bb = ArrayPool<float>.Shared.Rent(len);
            try
            {
                var av = ab.AsSpan(0, len);
                var bv = bb.AsSpan(0, len);
                fixed (float* f = ab) Float16.ToSingle(dt, (byte*)pa + s * es, f, len);
                if (same) { fixed (float* f = bb) Float16.ToSingle(dt, (byte*)pb + s * es, f, len); }
                else for (int i = 0; i < len; i++) bv[i] = bw![(s + i) / inner % period];
                BinarySpan<TOp, float>(av, bv, av, alpha, beta);
                fixed (float* f = ab) Float16.FromSingle(dt, f, (byte*)py + s * es, len);
            }
            finally
            {
                ArrayPool<float>.Shared.Return(ab);
                ArrayPool<float>.Shared.Return(bb);
            }
        });
    }

    private static void Ternary16<TOp>(Tensor y, Tensor a, Tensor b, Tensor c, float alpha, float beta) where TOp : struct, ITernaryOp
    {
        DType dt = y.DType;
        nint py = y.Pointer, pa = a.Pointer, pb = b.Pointer, pc = c.Pointer;
        int es = dt.Size();
        Chunked(y.Numel, (s, len) =>
        {
            var ab = ArrayPool<float>.Shared.Rent(len);
            var bb = ArrayPool<float>.Shared.Rent(len);
            var cb = ArrayPool<float>.Shared.Rent(len);
            try
            {
                fixed (float* fa = ab, fb = bb, fc = cb)
                {
                    Float16.ToSingle(dt, (byte*)pa + s * es, fa, len);
                    Float16.ToSingle(dt, (byte*)pb + s * es, fb, len);
                    Float16.ToSingle(dt, (byte*)pc + s * es, fc, len);
                    for (int i = 0; i < len; i++) fa[i] = TOp.Apply(fa[i], fb[i], fc[i], alpha, beta);
                    Float16.FromSingle(dt, fa, (byte*)py + s * es, len);
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(ab);
                ArrayPool<float>.Shared.Return(bb);
                ArrayPool<float>.Shared.Return(cb);
            }
        });
    }
}
