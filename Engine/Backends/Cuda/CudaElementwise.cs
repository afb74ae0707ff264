// Elementwise ops and the full sum on CUDA, launching Kernels/relu.cu and Kernels/reduce.cu.
// Outputs may alias inputs (the kernels read each element before writing it). Gradient rules are
// in the kernel file; the sum is deterministic (per-block partial sums in double, then one block).
namespace ResidualEngine.Backends.Cuda;

public sealed unsafe partial class CudaBackend
{
    private void Binary(KernelRef k, string op, Tensor y, Tensor a, Tensor b)
    {
        Enter();
        var name = k.For(y.DType, op);
        nint py = y.Pointer, pa = a.Pointer, pb = b.Pointer;
        long n = y.Numel;
        void** args = stackalloc void*[] { &py, &pa, &pb, &n };
        Launch1D(k.File, name, n, args);
    }

    private void Unary(KernelRef k, string op, Tensor y, Tensor x)
    {
        Enter();
        var name = k.For(y.DType, op);
        nint py = y.Pointer, px = x.Pointer;
        long n = y.Numel;
        void** args = stackalloc void*[] { &py, &px, &n };
        Launch1D(k.File, name, n, args);
    }

    public void Add(Tensor y, Tensor a, Tensor b) => Binary(CudaKernels.Add, "Add", y, a, b);
    public void Mul(Tensor y, Tensor a, Tensor b) => Binary(CudaKernels.Mul, "Mul", y, a, b);
    public void AddRelu(Tensor y, Tensor a, Tensor b) => Binary(CudaKernels.AddRelu, "AddRelu", y, a, b);
    public void ReluForward(Tensor y, Tensor x) => Unary(CudaKernels.ReluForward, "ReluForward", y, x);
    public void ReluBackward(Tensor dX, Tensor dY, Tensor y) => Binary(CudaKernels.ReluBackward, "ReluBackward", dX, dY, y);
    public void SigmoidForward(Tensor y, Tensor x) => Unary(CudaKernels.SigmoidForward, "SigmoidForward", y, x);
    public void SigmoidBackward(Tensor dX, Tensor dY, Tensor y) => Binary(CudaKernels.SigmoidBackward, "SigmoidBackward", dX, dY, y);

    public void Axpby(Tensor y, double alpha, Tensor x, double beta)
    {
        Enter();
        var name = CudaKernels.Axpby.For(y.DType, "Axpby");
        nint py = y.Pointer, px = x.Pointer;
        long n = y.Numel;
        if (y.DType == DType.F32)
        {
            float fa = (float)alpha, fb = (float)beta;
            void** args = stackalloc void*[] { &py, &fa, &px, &fb, &n };
            Launch1D(CudaKernels.Axpby.File, name, n, args);
        }
        else
        {
            double da = alpha, db = beta;
            void** args = stackalloc void*[] { &py, &da, &px, &db, &n };
            Launch1D(CudaKernels.Axpby.File, name, n, args);
        }
    }

    public void ScaleRowsForward(Tensor y, Tensor x, Tensor s)
    {
        Enter();
        var name = CudaKernels.ScaleRowsForward.For(y.DType, "ScaleRowsForward");
        nint py = y.Pointer, px = x.Pointer, ps = s.Pointer;
        long m = s.Numel, inner = m == 0 ? 0 : x.Numel / m;
        void** args = stackalloc void*[] { &py, &px, &ps, &m, &inner };
        Launch1D(CudaKernels.ScaleRowsForward.File, name, m * inner, args);
    }

    public void ScaleRowsBackward(Tensor? dX, Tensor? dS, Tensor dY, Tensor x, Tensor s)
    {
        if (dX is null && dS is null) return;
        Enter();
        var name = CudaKernels.ScaleRowsBackward.For(dY.DType, "ScaleRowsBackward");
        nint pdx = dX?.Pointer ?? 0, pds = dS?.Pointer ?? 0, pdy = dY.Pointer, px = x.Pointer, ps = s.Pointer;
        long m = s.Numel, inner = m == 0 ? 0 : x.Numel / m;
        void** args = stackalloc void*[] { &pdx, &pds, &pdy, &px, &ps, &m, &inner };
        LaunchRows(CudaKernels.ScaleRowsBackward.File, name, m, Threads, args);
    }

    public void Sum(Tensor y, Tensor x)
    {
        Enter();
        var t = x.DType;
        var partialName = CudaKernels.SumPartial.For(t, "Sum");
        long n = x.Numel;
        int blocks = (int)Math.Clamp((n + 511) / 512, 1, 1024);
        using var partials = TakeScratch(blocks * sizeof(double));
        nint pp = partials.Pointer, px = x.Pointer;
        void** a1 = stackalloc void*[] { &pp, &px, &n };
        Launch(CudaKernels.SumPartial.File, partialName, ((uint)blocks, 1, 1), (512, 1, 1), a1);
        FinishSum(y, pp, blocks, 1.0);
    }

    /// <summary>y[0] = scale * sum of <paramref name="count"/> doubles at <paramref name="partials"/> (one block).</summary>
    internal void FinishSum(Tensor y, nint partials, int count, double scale)
    {
        var name = CudaKernels.SumFinalize.For(y.DType, "Sum");
        nint py = y.Pointer, pp = partials;
        int c = count;
        double sc = scale;
        void** a = stackalloc void*[] { &py, &pp, &c, &sc };
        Launch(CudaKernels.SumFinalize.File, name, (1, 1, 1), (512, 1, 1), a);
    }
}
