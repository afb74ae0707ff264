// --threads for the CPU backend: how many cores the engine's parallel loops may use, so ours and
// PyTorch (torch.set_num_threads) run on the same number of threads.
namespace ResidualEngine.Tools.Bench;

public static class ThreadControl
{
    /// <summary>Applies a thread count (0 = all cores) and returns the count in effect.</summary>
    public static int Apply(int threads)
    {
        if (threads < 0) throw new ArgumentException($"option --threads must not be negative, got {threads}");
        int n = threads == 0 ? Environment.ProcessorCount : threads;
        // TODO(bench): hook the CPU backend's degree of parallelism once it exposes one.
        return Math.Min(n, Environment.ProcessorCount);
    }
}
