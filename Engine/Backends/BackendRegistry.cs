// Maps a Device to its backend. The CPU backend always exists; the CUDA backend registers a
// factory when it loads, and asking for a CUDA device without one gives a clear error.
using ResidualEngine.Backends.Cpu;

namespace ResidualEngine.Backends;

public static class BackendRegistry
{
    private static readonly object s_lock = new();
    private static readonly Dictionary<int, IBackend> s_cuda = new();

    /// <summary>Creates the backend for a CUDA device index (the CUDA backend by default; replaceable in tests).</summary>
    public static Func<int, IBackend>? CudaFactory { get; set; } = index => Cuda.CudaBackend.Create(index);

    /// <summary>Optional wrapper around every backend handed out to new tensors (the op profiler of
    /// `residual bench --profile`); null, the default, costs one field read per tensor created.</summary>
    public static Func<IBackend, IBackend>? Interceptor { get; set; }

    public static IBackend Get(Device device)
    {
        var b = GetUnwrapped(device);
        return Interceptor is { } wrap ? wrap(b) : b;
    }

    private static IBackend GetUnwrapped(Device device)
    {
        if (device.Type == DeviceType.Cpu) return CpuBackend.Instance;
        lock (s_lock)
        {
            if (s_cuda.TryGetValue(device.Index, out var b)) return b;
            var f = CudaFactory ?? throw new NotSupportedException($"no CUDA backend is available for {device}");
            b = f(device.Index);
            s_cuda[device.Index] = b;
            return b;
        }
    }
}
