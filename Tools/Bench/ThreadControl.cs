// --threads for the CPU backend: how many cores the engine's GEMM and convolution kernels may use
// (CpuBackend.Threads), so ours and PyTorch (torch.set_num_threads) run on the same number of threads.
using ResidualEngine.Backends.Cpu;

namespace ResidualEngine.Tools.Bench;

public static class ThreadControl
{
    /// <summary>Applies a thread count (0 = every core) and returns the count in effect.</summary>
    public static int Apply(int threads)
    {
        if (threads < 0) throw new ArgumentException($"option --threads must not be negative, got {threads}");
        int n = threads == 0 ? Environment.ProcessorCount : threads;
        CpuBackend.Threads = n;
        return n;
    }
}
