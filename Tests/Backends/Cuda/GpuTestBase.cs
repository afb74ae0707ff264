// Shared set-up for GPU tests: skip with the reason when no CUDA device is present, random CPU
// inputs, GPU outputs poisoned with NaN (so an op that leaves elements unwritten fails), and the
// GPU-vs-CPU comparison |gpu - cpu| <= 1e-3 + 1e-3 |cpu| in F32 (TF32 off).
using NUnit.Framework;
using ResidualEngine.Backends;
using ResidualEngine.Backends.Cpu;
using ResidualEngine.Backends.Cuda;

namespace ResidualEngine.Tests.Backends.Cuda;

public abstract class GpuTestBase
{
    protected const double Atol = 1e-3, Rtol = 1e-3;
    protected static readonly IBackend Cpu = CpuBackend.Instance;
    protected CudaBackend Gpu { get; private set; } = null!;
    protected static Device Dev => Device.Cuda();
    private TensorScope? _scope;

    [SetUp]
    public void RequireGpu()
    {
        if (!CudaBackend.IsAvailable(out var reason))
            Assert.Ignore("GPU test skipped: " + reason.Split('\n')[0].Replace("; paths tried:", "", StringComparison.Ordinal) + " (`residual info` lists every path tried)");
        Gpu = (CudaBackend)BackendRegistry.Get(Dev);
        Gpu.AllowTf32 = false;
        Gpu.UseCudnnBatchNorm = true;
        _scope = TensorScope.Begin();
    }

    [TearDown]
    public void EndScope()
    {
        _scope?.Dispose();
        _scope = null;
    }

    protected static Tensor Rand(Random rng, params int[] dims) => Tensor.Rand(new Shape(dims), rng, -1, 1);
    protected static Tensor RandF64(Random rng, params int[] dims) => Tensor.Rand(new Shape(dims), rng, -1, 1, DType.F64);

    protected static Tensor G(Tensor cpu) => cpu.To(Dev);

    /// <summary>A GPU output filled with NaN (or -7 for integer types).</summary>
    protected Tensor GpuOut(Shape s, DType dt = DType.F32)
    {
        var t = Tensor.Empty(s, dt, Dev);
        Gpu.Fill(t, dt.IsFloat() ? double.NaN : -7);
        return t;
    }

    protected static Tensor CpuOut(Shape s, DType dt = DType.F32) => Tensor.Full(s, dt.IsFloat() ? double.NaN : -7, dt);

    protected static void Near(Tensor gpu, Tensor cpu, string what, double atol = Atol, double rtol = Rtol)
    {
        using var back = gpu.To(Device.Cpu);
        Close.Assert(back, cpu, atol, rtol, what);
        Assert.That(back.ToDoubles(), Has.None.NaN, $"{what}: NaN left in the GPU output");
    }

    protected static void Exact(Tensor gpu, Tensor cpu, string what)
    {
        using var back = gpu.To(Device.Cpu);
        Assert.That(back.ToDoubles(), Is.EqualTo(cpu.ToDoubles()), what);
    }
}
