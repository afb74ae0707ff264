// Per-plane SIMD loops of the CPU batch norm with its fused activation (CpuBatchNorm.cs):
//   forward   y = act(x * scale + shift + residual)             (act = ReLU or none)
//   backward  g = relu ? (y > 0 ? dY : 0) : dY
//             sums of g and of g * (x - mean) in one pass (double accumulators),
//             dX = g * a + (x - mean) * b + c, and dResidual = g, in a second pass.
// ReLU propagates NaN as Pointwise.Relu; the mask y > 0 is ReluBackward's.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ResidualEngine.Backends.Cpu;

internal static unsafe class BnKernels
{
    /// <summary>y = act(x * a + b + residual) over one plane (residual may be null; y may alias x).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AffineAct<T>(T* x, T a, T b, T* residual, bool relu, T* y, int n) where T : unmanaged, INumber<T>
    {
        int i = 0, w = Vector<T>.Count;
        var va = new Vector<T>(a);
        var vb = new Vector<T>(b);
        for (; i <= n - w; i += w)
        {
            var v = Vector.Load(x + i) * va + vb;
            if (residual != null) v += Vector.Load(residual + i);
            if (relu) v = Vector.Max(v, Vector<T>.Zero);
            v.Store(y + i);
        }
        for (; i < n; i++)
        {
            T v = x[i] * a + b;
            if (residual != null) v += residual[i];
            if (relu && !(v > T.Zero) && !T.IsNaN(v)) v = T.Zero;
            y[i] = v;
        }
    }

    /// <summary>Sum of g and of g * (x - mean) over one plane, g = dy masked by y &gt; 0 when y is not null.</summary>
    public static (double G, double GX) Sums<T>(T* dy, T* y, T* x, double mean, int n) where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return SumsF32((float*)dy, (float*)y, (float*)x, mean, n);
        return SumsF64((double*)dy, (double*)y, (double*)x, mean, n);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (double, double) SumsF32(float* dy, float* y, float* x, double mean, int n)
    {
        var g0 = Vector<double>.Zero; var g1 = Vector<double>.Zero;
        var s0 = Vector<double>.Zero; var s1 = Vector<double>.Zero;
        var vm = new Vector<double>(mean);
        int i = 0, w = Vector<float>.Count;
        for (; i <= n - w; i += w)
        {
            var g = Vector.Load(dy + i);
            if (y != null) g = Vector.ConditionalSelect(Vector.GreaterThan(Vector.Load(y + i), Vector<float>.Zero), g, Vector<float>.Zero);
            Vector.Widen(g, out var glo, out var ghi);
            Vector.Widen(Vector.Load(x + i), out var xlo, out var xhi);
            g0 += glo; g1 += ghi;
            s0 += glo * (xlo - vm); s1 += ghi * (xhi - vm);
        }
        double sg = Vector.Sum(g0 + g1), sgx = Vector.Sum(s0 + s1);
        for (; i < n; i++)
        {
            float g = y == null || y[i] > 0 ? dy[i] : 0;
            sg += g;
            sgx += g * (x[i] - mean);
        }
        return (sg, sgx);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (double, double) SumsF64(double* dy, double* y, double* x, double mean, int n)
    {
        var g0 = Vector<double>.Zero; var s0 = Vector<double>.Zero;
        var vm = new Vector<double>(mean);
        int i = 0, w = Vector<double>.Count;
        for (; i <= n - w; i += w)
        {
            var g = Vector.Load(dy + i);
            if (y != null) g = Vector.ConditionalSelect(Vector.GreaterThan(Vector.Load(y + i), Vector<double>.Zero), g, Vector<double>.Zero);
            g0 += g;
            s0 += g * (Vector.Load(x + i) - vm);
        }
        double sg = Vector.Sum(g0), sgx = Vector.Sum(s0);
        for (; i < n; i++)
        {
            double g = y == null || y[i] > 0 ? dy[i] : 0;
            sg += g;
            sgx += g * (x[i] - mean);
        }
        return (sg, sgx);
    }

    /// <summary>dx = g * a + (x - m) * b + c and dres = g (when not null), g = dy masked by y &gt; 0 when y is not null.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Grad<T>(T* dy, T* y, T* x, T a, T m, T b, T c, T* dx, T* dres, int n) where T : unmanaged, INumber<T>
    {
        var va = new Vector<T>(a);
        var vm = new Vector<T>(m);
        var vb = new Vector<T>(b);
        var vc = new Vector<T>(c);
        int i = 0, w = Vector<T>.Count;
        for (; i <= n - w; i += w)
        {
            var g = Vector.Load(dy + i);
            if (y != null) g = Vector.ConditionalSelect(Vector.GreaterThan(Vector.Load(y + i), Vector<T>.Zero), g, Vector<T>.Zero);
            if (dres != null) g.Store(dres + i);
            (g * va + (Vector.Load(x + i) - vm) * vb + vc).Store(dx + i);
        }
        for (; i < n; i++)
        {
            T g = y == null || y[i] > T.Zero ? dy[i] : T.Zero;
            if (dres != null) dres[i] = g;
            dx[i] = g * a + (x[i] - m) * b + c;
        }
    }
}
