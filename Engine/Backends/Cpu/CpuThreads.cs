// How many threads the CPU backend's heavy kernels (GEMM, convolution) may use. Defaults to
// every core; benchmarks set it to match the other side (torch.set_num_threads).
namespace ResidualEngine.Backends.Cpu;

public sealed partial class CpuBackend
{
    private static int s_threads = Environment.ProcessorCount;

    /// <summary>Worker threads for GEMM and convolution (at least 1; default: the processor count).</summary>
    public static int Threads
    {
        get => s_threads;
        set
        {
            if (value < 1) throw new ArgumentOutOfRangeException(nameof(value), value, "CpuBackend.Threads must be at least 1");
            s_threads = value;
        }
    }
}
