// Process-wide counters of live tensors and bytes, so tests can assert that a scope or a
// training step returns them to where they started, and that nothing leaked to a finalizer.
namespace ResidualEngine;

public static class TensorStats
{
    private static long _liveTensors;
    private static long _liveCpuBytes, _liveCudaBytes;
    private static long _peakCudaBytes;
    private static long _leakedStorages;

    /// <summary>Tensor objects created and not yet disposed.</summary>
    public static long LiveTensors => Interlocked.Read(ref _liveTensors);

    /// <summary>Bytes of storage alive on a device type (tensors' own storage, not allocator caches).</summary>
    public static long LiveBytes(DeviceType t) => t == DeviceType.Cpu ? Interlocked.Read(ref _liveCpuBytes) : Interlocked.Read(ref _liveCudaBytes);

    /// <summary>Highest <see cref="LiveBytes"/> on CUDA since start or the last <see cref="ResetPeak"/>.</summary>
    public static long PeakCudaBytes => Interlocked.Read(ref _peakCudaBytes);

    /// <summary>Storages that were collected by the GC without being released (a leak in user code).</summary>
    public static long LeakedStorages => Interlocked.Read(ref _leakedStorages);

    public static void ResetPeak() => Interlocked.Exchange(ref _peakCudaBytes, Interlocked.Read(ref _liveCudaBytes));

    internal static void OnTensorCreated() => Interlocked.Increment(ref _liveTensors);
    internal static void OnTensorDisposed() => Interlocked.Decrement(ref _liveTensors);

    internal static void OnAllocate(DeviceType t, long bytes)
    {
        if (t == DeviceType.Cpu) { Interlocked.Add(ref _liveCpuBytes, bytes); return; }
        long now = Interlocked.Add(ref _liveCudaBytes, bytes);
        long peak;
        while (now > (peak = Interlocked.Read(ref _peakCudaBytes)))
            if (Interlocked.CompareExchange(ref _peakCudaBytes, now, peak) == peak) break;
    }

    internal static void OnFree(DeviceType t, long bytes)
    {
        if (t == DeviceType.Cpu) Interlocked.Add(ref _liveCpuBytes, -bytes);
        else Interlocked.Add(ref _liveCudaBytes, -bytes);
    }

    internal static void OnLeak(DeviceType t, long bytes)
    {
        Interlocked.Increment(ref _leakedStorages);
        OnFree(t, bytes);
    }
}
