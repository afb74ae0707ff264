// Process-wide memory counters, as torch.cuda.memory_allocated / memory_reserved / max_memory_allocated,
// for both devices: bytes held by live tensors (their storages), the peak of that since the last
// ResetPeak, and bytes reserved by the device's caching allocator (live blocks plus its cache).
// Tests assert that a scope or a training step returns the counters to where they started, and
// that nothing leaked to a finalizer.
using ResidualEngine.Backends.Cpu;

namespace ResidualEngine;

public static class TensorStats
{
    private static long _liveTensors;
    private static long _liveCpuBytes, _liveCudaBytes;
    private static long _peakCpuBytes, _peakCudaBytes;
    private static long _leakedStorages;
    private static Func<long>? s_cudaReserved;

    /// <summary>Tensor objects created and not yet disposed.</summary>
    public static long LiveTensors => Interlocked.Read(ref _liveTensors);

    /// <summary>Bytes of storage alive on a device type (tensors' own storage, not allocator caches).</summary>
    public static long LiveBytes(DeviceType t) => t == DeviceType.Cpu ? Interlocked.Read(ref _liveCpuBytes) : Interlocked.Read(ref _liveCudaBytes);

    /// <summary>Highest <see cref="LiveBytes"/> on a device type since start or the last <see cref="ResetPeak"/>.</summary>
    public static long PeakBytes(DeviceType t) => t == DeviceType.Cpu ? Interlocked.Read(ref _peakCpuBytes) : Interlocked.Read(ref _peakCudaBytes);

    /// <summary>Highest <see cref="LiveBytes"/> on CUDA since start or the last <see cref="ResetPeak"/>.</summary>
    public static long PeakCudaBytes => PeakBytes(DeviceType.Cuda);

    /// <summary>Bytes the device's caching allocator holds from the system: live blocks plus its cache
    /// (rounded to size classes, so at least <see cref="LiveBytes"/>). 0 for CUDA before it is used.</summary>
    public static long ReservedBytes(DeviceType t) => t == DeviceType.Cpu ? HostAllocator.ReservedBytes : s_cudaReserved?.Invoke() ?? 0;

    /// <summary>Storages that were collected by the GC without being released (a leak in user code).</summary>
    public static long LeakedStorages => Interlocked.Read(ref _leakedStorages);

    /// <summary>Starts new peaks (live tensor bytes on both devices, and the host allocator's reserved peak) from the current levels.</summary>
    public static void ResetPeak()
    {
        Interlocked.Exchange(ref _peakCpuBytes, Interlocked.Read(ref _liveCpuBytes));
        Interlocked.Exchange(ref _peakCudaBytes, Interlocked.Read(ref _liveCudaBytes));
        HostAllocator.ResetPeak();
    }

    /// <summary>The CUDA backend reports its allocators' reserved bytes through this.</summary>
    internal static void SetCudaReserved(Func<long> reserved) => s_cudaReserved = reserved;

    internal static void OnTensorCreated() => Interlocked.Increment(ref _liveTensors);
    internal static void OnTensorDisposed() => Interlocked.Decrement(ref _liveTensors);

    internal static void OnAllocate(DeviceType t, long bytes)
    {
        ref long live = ref t == DeviceType.Cpu ? ref _liveCpuBytes : ref _liveCudaBytes;
        ref long peak = ref t == DeviceType.Cpu ? ref _peakCpuBytes : ref _peakCudaBytes;
        long now = Interlocked.Add(ref live, bytes);
        long p;
        while (now > (p = Interlocked.Read(ref peak)))
            if (Interlocked.CompareExchange(ref peak, now, p) == p) break;
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
