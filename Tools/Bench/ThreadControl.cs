// --threads for the CPU backend: how many cores the engine's GEMM and convolution kernels may use
// (CpuBackend.Threads), so ours and PyTorch (torch.set_num_threads) run on the same number of
// threads. The setting is process-wide, so runs apply it for their duration and restore it.
using ResidualEngine.Backends.Cpu;

namespace ResidualEngine.Tools.Bench;

public static class ThreadControl
{
    /// <summary>Applies a thread count (0 = every core) until the returned scope is disposed; Threads is the count in effect.</summary>
    public static Scope Apply(int threads)
    {
        if (threads < 0) throw new ArgumentException($"option --threads must not be negative, got {threads}");
        int n = threads == 0 ? Environment.ProcessorCount : threads;
        var previous = CpuBackend.Threads;
        CpuBackend.Threads = n;
        return new Scope(n, previous);
    }

    public sealed class Scope(int threads, int previous) : IDisposable
    {
        private bool _disposed;

        public int Threads { get; } = threads;

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            CpuBackend.Threads = previous;
        }
    }
}
