// Option-A shortcut on the CPU, NCHW, F32 and F64, one thread per output (or input) plane:
// forward samples x[:, :, ::s, ::s] into channels [padBefore, padBefore + C) of y and zeroes the
// rest; backward gathers dY's middle channels back onto the sampled positions (others get 0).
namespace ResidualEngine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void ShortcutAForward(Tensor y, Tensor x, int stride, int padBefore)
    {
        if (RunCanonical("oi", true, t => ShortcutAForward(t[0]!, t[1]!, stride, padBefore), y, x)) return; // 16-bit / NHWC: CpuMixed.cs
        RequireFloat(x, "ShortcutAForward");
        var g = ShortcutGeom.Of(x, y, stride, padBefore, "ShortcutAForward");
        if (x.DType == DType.F32) ShortcutFwd<float>(y.Pointer, x.Pointer, g);
        else ShortcutFwd<double>(y.Pointer, x.Pointer, g);
    }

    public void ShortcutABackward(Tensor dX, Tensor dY, int stride, int padBefore)
    {
        if (RunCanonical("oi", true, t => ShortcutABackward(t[0]!, t[1]!, stride, padBefore), dX, dY)) return;
        RequireFloat(dX, "ShortcutABackward");
        var g = ShortcutGeom.Of(dX, dY, stride, padBefore, "ShortcutABackward");
        if (dX.DType == DType.F32) ShortcutBwd<float>(dX.Pointer, dY.Pointer, g);
        else ShortcutBwd<double>(dX.Pointer, dY.Pointer, g);
    }

    private readonly record struct ShortcutGeom(int N, int C, int K, int H, int W, int P, int Q, int Stride, int Pad)
    {
        public static ShortcutGeom Of(Tensor x, Tensor y, int stride, int pad, string op)
        {
            if (x.Rank != 4 || y.Rank != 4) throw new ArgumentException($"{op}: needs 4-d tensors, got {x.Shape} and {y.Shape}");
            if (stride < 1) throw new ArgumentException($"{op}: stride must be positive, got {stride}");
            var g = new ShortcutGeom(x.Shape[0], x.Shape[1], y.Shape[1], x.Shape[2], x.Shape[3], y.Shape[2], y.Shape[3], stride, pad);
            if (pad < 0 || pad + g.C > g.K || y.Shape[0] != g.N || g.P != (g.H + stride - 1) / stride || g.Q != (g.W + stride - 1) / stride)
                throw new ArgumentException($"{op}: y {y.Shape} does not fit x {x.Shape} with stride {stride} and {pad} channels before");
            return g;
        }
    }

    private static void ShortcutFwd<T>(nint y, nint x, ShortcutGeom g) where T : unmanaged
    {
        int pq = g.P * g.Q, hw = g.H * g.W;
        CpuVec.For(g.N * g.K, pq, plane =>
        {
            int n = plane / g.K, c = plane % g.K - g.Pad;
            var ys = new Span<T>((T*)y + (long)plane * pq, pq);
            if (c < 0 || c >= g.C) { ys.Clear(); return; }
            var xs = new ReadOnlySpan<T>((T*)x + ((long)n * g.C + c) * hw, hw);
            if (g.Stride == 1) { xs.CopyTo(ys); return; }
            if (g.Stride == 2)
            {
                // Even columns of the even rows, vectorised (the option-A shortcut's usual case).
                T* src = (T*)x + ((long)n * g.C + c) * hw, dst = (T*)y + (long)plane * pq;
                for (int p = 0; p < g.P; p++) VecCopy.Deinterleave2Even(dst + p * g.Q, src + (long)2 * p * g.W, g.Q, g.W);
                return;
            }
            for (int p = 0; p < g.P; p++)
            {
                var row = xs.Slice(p * g.Stride * g.W, g.W);
                for (int q = 0; q < g.Q; q++) ys[p * g.Q + q] = row[q * g.Stride];
            }
        });
    }

    private static void ShortcutBwd<T>(nint dx, nint dy, ShortcutGeom g) where T : unmanaged
    {
        int pq = g.P * g.Q, hw = g.H * g.W;
        CpuVec.For(g.N * g.C, hw, plane =>
        {
            int n = plane / g.C, c = plane % g.C;
            var dxs = new Span<T>((T*)dx + (long)plane * hw, hw);
            var dys = new ReadOnlySpan<T>((T*)dy + ((long)n * g.K + c + g.Pad) * pq, pq);
            if (g.Stride == 1) { dys.CopyTo(dxs); return; }
            dxs.Clear();
            if (g.Stride == 2)
            {
                // dY into the even columns of the even rows (odd columns from a row of zeros), vectorised.
                T* zero = stackalloc T[g.W / 2 + 1];
                new Span<T>(zero, g.W / 2 + 1).Clear();
                T* src = (T*)dy + ((long)n * g.K + c + g.Pad) * pq, dst = (T*)dx + (long)plane * hw;
                for (int p = 0; p < g.P; p++) VecCopy.Interleave2(dst + (long)2 * p * g.W, src + p * g.Q, zero, g.W);
                return;
            }
            for (int p = 0; p < g.P; p++)
            {
                var row = dxs.Slice(p * g.Stride * g.W, g.W);
                for (int q = 0; q < g.Q; q++) row[q * g.Stride] = dys[p * g.Q + q];
            }
        });
    }
}
