// The pointwise family on the CPU: one generic path per arity (Engine/Ops/Pointwise). Work is cut
// into cache-sized chunks spread over CpuBackend.Threads; each chunk runs the op's vectorised span
// form when it has one, else its scalar form (the JIT specialises both per op and element type).
// A broadcast operand is walked in runs where it is constant (per row, per channel) or repeats
// whole (a row vector). SumTo accumulates in double and in a fixed order, so it is deterministic.
// F32 and F64 here; BF16/F16 go through float chunks (CpuPointwise16.cs). The family is layout-blind:
// a channels-last tensor is just memory, and its broadcasts say how b lines up (Broadcast.Channels).
using System.Numerics;
using System.Numerics.Tensors;
using ResidualEngine.Pointwise;

namespace ResidualEngine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    private const int Chunk = 1 << 14;

    public void Map<TOp>(Tensor y, Tensor x, double alpha, double beta) where TOp : struct, IUnaryOp
    {
        if (y.DType.Is16Bit()) { Unary16<TOp>(y, x, (float)alpha, (float)beta); return; }
        RequireFloat(y, Pointwise.PointwiseInfo.KernelName<TOp>());
        if (y.DType == DType.F32) Unary<TOp, float>((float*)y.Pointer, (float*)x.Pointer, y.Numel, (float)alpha, (float)beta);
        else Unary<TOp, double>((double*)y.Pointer, (double*)x.Pointer, y.Numel, alpha, beta);
    }

    public void Map<TOp>(Tensor y, Tensor a, Tensor b, Broadcast bc, double alpha, double beta) where TOp : struct, IBinaryOp
    {
        if (y.DType.Is16Bit()) { Binary16<TOp>(y, a, b, bc, (float)alpha, (float)beta); return; }
        RequireFloat(y, Pointwise.PointwiseInfo.KernelName<TOp>());
        if (y.DType == DType.F32) Binary<TOp, float>((float*)y.Pointer, (float*)a.Pointer, (float*)b.Pointer, y.Numel, bc, (float)alpha, (float)beta);
        else Binary<TOp, double>((double*)y.Pointer, (double*)a.Pointer, (double*)b.Pointer, y.Numel, bc, alpha, beta);
    }

    public void Map<TOp>(Tensor y, Tensor a, Tensor b, Tensor c, double alpha, double beta) where TOp : struct, ITernaryOp
    {
        if (y.DType.Is16Bit()) { Ternary16<TOp>(y, a, b, c, (float)alpha, (float)beta); return; }
        RequireFloat(y, Pointwise.PointwiseInfo.KernelName<TOp>());
        if (y.DType == DType.F32) Ternary<TOp, float>((float*)y.Pointer, (float*)a.Pointer, (float*)b.Pointer, (float*)c.Pointer, y.Numel, (float)alpha, (float)beta);
        else Ternary<TOp, double>((double*)y.Pointer, (double*)a.Pointer, (double*)b.Pointer, (double*)c.Pointer, y.Numel, alpha, beta);
    }

    public void SumTo(Tensor y, Tensor x, Broadcast bc)
    {
        // 16-bit: summed as F32 (in double accumulators), then rounded; the layout stays as it is (bc describes it).
        if (RunCanonical("oi", layout: false, t => SumTo(t[0]!, t[1]!, bc), y, x)) return;
        RequireFloat(x, "SumTo");
        if (y.Numel != bc.Period || y.DType != x.DType)
            throw new ArgumentException($"SumTo: result {y.Describe()} does not hold the {bc.Period} sums of {x.Describe()}");
        if (x.DType == DType.F32) SumTo((float*)y.Pointer, (float*)x.Pointer, x.Numel, bc);
        else SumTo((double*)y.Pointer, (double*)x.Pointer, x.Numel, bc);
    }

    /// <summary>Runs body(start, length) over [0, n) in chunks, on up to CpuBackend.Threads threads.</summary>
    private static void Chunked(long n, Action<long, int> body)
    {
        long chunks = (n + Chunk - 1) / Chunk;
        if (chunks <= 1 || Threads == 1)
        {
            for (long s = 0; s < n; s += Chunk) body(s, (int)Math.Min(Chunk, n - s));
            return;
        }
        CpuWorkers.Run(checked((int)chunks), Threads, (i, _) =>
        {
            long s = (long)i * Chunk;
            body(s, (int)Math.Min(Chunk, n - s));
        });
    }

    private static void Unary<TOp, T>(T* y, T* x, long n, T alpha, T beta) where TOp : struct, IUnaryOp where T : unmanaged, IFloatingPointIeee754<T>
    {
        nint py = (nint)y, px = (nint)x;
        Chunked(n, (s, len) =>
        {
            var xs = new ReadOnlySpan<T>((T*)px + s, len);
            var ys = new Span<T>((T*)py + s, len);
            if (!TOp.Apply(xs, ys, alpha, beta))
                for (int i = 0; i < len; i++) ys[i] = TOp.Apply(xs[i], alpha, beta);
        });
    }

    private static void Binary<TOp, T>(T* y, T* a, T* b, long n, Broadcast bc, T alpha, T beta) where TOp : struct, IBinaryOp where T : unmanaged, IFloatingPointIeee754<T>
    {
        nint py = (nint)y, pa = (nint)a, pb = (nint)b;
        if (bc.IsElementwise(n))
        {
            Chunked(n, (s, len) => BinarySpan<TOp, T>(new ReadOnlySpan<T>((T*)pa + s, len), new ReadOnlySpan<T>((T*)pb + s, len),
                new Span<T>((T*)py + s, len), alpha, beta));
            return;
        }
        if (bc.Inner == 1)
        {
            // b is a whole row of length Period, repeated: each row of a meets all of b.
            int period = checked((int)bc.Period);
            long rows = n / period;
            int perTask = (int)Math.Max(1, Chunk / period);
            int tasks = checked((int)((rows + perTask - 1) / perTask));
            CpuVec.For(tasks, (long)perTask * period, t =>
            {
                var bs = new ReadOnlySpan<T>((T*)pb, period);
                for (long r = (long)t * perTask, r1 = Math.Min(rows, r + perTask); r < r1; r++)
                    BinarySpan<TOp, T>(new ReadOnlySpan<T>((T*)pa + r * period, period), bs, new Span<T>((T*)py + r * period, period), alpha, beta);
            });
            return;
        }
        // b is constant over runs of Inner elements: run r uses b[r % Period]. The span form
        // gets b as a short buffer filled with that value.
        long inner = bc.Inner, periodB = bc.Period;
        Chunked(n, (s, len) =>
        {
            Span<T> buf = stackalloc T[Math.Min(len, 1024)];
            T current = default;
            int filled = 0;
            for (long i = s, end = s + len; i < end;)
            {
                long run = i / inner;
                int m = (int)Math.Min(Math.Min(end, (run + 1) * inner) - i, buf.Length);
                T bv = ((T*)pb)[run % periodB];
                if (filled < m || bv != current) { buf[..m].Fill(bv); current = bv; filled = m; }
                BinarySpan<TOp, T>(new ReadOnlySpan<T>((T*)pa + i, m), buf[..m], new Span<T>((T*)py + i, m), alpha, beta);
                i += m;
            }
        });
    }

    private static void BinarySpan<TOp, T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y, T alpha, T beta) where TOp : struct, IBinaryOp where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (TOp.Apply(a, b, y, alpha, beta)) return;
        for (int i = 0; i < y.Length; i++) y[i] = TOp.Apply(a[i], b[i], alpha, beta);
    }

    private static void Ternary<TOp, T>(T* y, T* a, T* b, T* c, long n, T alpha, T beta) where TOp : struct, ITernaryOp where T : unmanaged, IFloatingPointIeee754<T>
    {
        nint py = (nint)y, pa = (nint)a, pb = (nint)b, pc = (nint)c;
        Chunked(n, (s, len) =>
        {
            T* yy = (T*)py + s, aa = (T*)pa + s, bb = (T*)pb + s, cc = (T*)pc + s;
            for (int i = 0; i < len; i++) yy[i] = TOp.Apply(aa[i], bb[i], cc[i], alpha, beta);
        });
    }

    private static void SumTo<T>(T* y, T* x, long n, Broadcast bc) where T : unmanaged, INumber<T>
    {
        long period = bc.Period, inner = bc.Inner;
        long outer = period * inner == 0 ? 0 : n / (period * inner);
        if (period == 1)
        {
            // Full sum: fixed chunks summed in double in parallel, then added in chunk order.
            long chunks = (n + Chunk - 1) / Chunk;
            var partial = new double[Math.Max(1, chunks)];
            nint px = (nint)x;
            Chunked(n, (s, len) => partial[s / Chunk] = CpuVec.Sum(new ReadOnlySpan<T>((T*)px + s, len)));
            double total = 0;
            foreach (var p in partial) total += p;
            y[0] = T.CreateTruncating(total);
            return;
        }
        if (inner == 1)
        {
            // Column sums of x viewed as (outer, period): add rows into double accumulators.
            var acc = new double[period];
            for (long o = 0; o < outer; o++)
            {
                T* row = x + o * period;
                for (long k = 0; k < period; k++) acc[k] += double.CreateTruncating(row[k]);
            }
            for (long k = 0; k < period; k++) y[k] = T.CreateTruncating(acc[k]);
            return;
        }
        // Per target k: the sum of the planes x[o, k, :] over o (per-channel, per-row sums).
        nint py = (nint)y, pxx = (nint)x;
        CpuVec.For(checked((int)period), outer * inner, k =>
        {
            double acc = 0;
            for (long o = 0; o < outer; o++)
                acc += CpuVec.Sum(new ReadOnlySpan<T>((T*)pxx + (o * period + k) * inner, checked((int)inner)));
            ((T*)py)[k] = T.CreateTruncating(acc);
        });
    }
}
