// The caching device allocator. Requests are rounded up to a size class (512-byte steps up to
// 1 MiB, then four classes per power of two, so at most 25% is wasted) and freed blocks go to a
// free list per class instead of back to the driver: a training loop that allocates the same
// sizes every step stops calling cuMemAlloc after the first step, and buffer addresses are stable.
// Reuse is stream-ordered: the backend queues all work on one stream, so a block released by the
// host may be handed out again at once — any kernel that still reads it runs before the new user's.
// On out-of-memory the cache is released (after a stream sync) and the allocation retried once;
// then CudaOutOfMemoryException states requested, free, total, allocated and cached bytes.
// Finalizers never call CUDA: a leaked storage's block goes to a ConcurrentQueue that the next
// allocation drains (putting it back in a free list needs no CUDA call either).
using System.Collections.Concurrent;

namespace ResidualEngine.Backends.Cuda;

/// <summary>The device-memory primitives under the allocator (the driver on a GPU, a fake in tests).</summary>
internal interface IDeviceMemory
{
    /// <summary>Allocates; returns false on out-of-memory and throws for any other failure.</summary>
    bool TryAllocate(long bytes, out nint ptr);
    void Free(nint ptr);
    (long Free, long Total) MemoryInfo();
    /// <summary>Waits until the stream that uses the memory is idle.</summary>
    void Synchronize();
}

/// <summary>A snapshot of the allocator's counters (bytes are rounded block sizes).</summary>
public readonly record struct CudaAllocatorStats(
    long AllocatedBytes, long CachedBytes, long PeakAllocatedBytes, long LiveBlocks,
    long DeviceAllocations, long ReusedAllocations, long DeferredFrees)
{
    /// <summary>Bytes this allocator holds from the driver (live plus cached).</summary>
    public long ReservedBytes => AllocatedBytes + CachedBytes;
}

public sealed class CudaAllocator
{
    private const long Small = 1L << 20;

    private readonly object _lock = new();
    private readonly IDeviceMemory _memory;
    private readonly Device _device;
    private readonly Dictionary<nint, long> _live = new();
    private readonly Dictionary<long, Stack<nint>> _free = new();
    private readonly ConcurrentQueue<nint> _deferred = new();
    private long _allocated, _cached, _peak, _deviceAllocs, _reused, _deferredCount;

    internal CudaAllocator(IDeviceMemory memory, Device device)
    {
        _memory = memory;
        _device = device;
    }

    /// <summary>The size class of a request: multiples of 512 bytes up to 1 MiB, then 4 classes per power of two.</summary>
    public static long RoundSize(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        if (bytes <= 512) return 512;
        if (bytes <= Small) return (bytes + 511) / 512 * 512;
        int e = 63 - (int)long.LeadingZeroCount(bytes - 1); // 2^e < bytes <= 2^(e+1)
        long step = 1L << (e - 2);
        return (bytes + step - 1) / step * step;
    }

    public CudaAllocatorStats Stats
    {
        get
        {
            lock (_lock)
            {
                DrainDeferred();
                return new CudaAllocatorStats(_allocated, _cached, _peak, _live.Count, _deviceAllocs, _reused, _deferredCount);
            }
        }
    }

    /// <summary>Restarts the peak counter at the current allocation.</summary>
    public void ResetPeak()
    {
        lock (_lock) _peak = _allocated;
    }

    /// <summary>A block of at least <paramref name="bytes"/> bytes.</summary>
    internal nint Allocate(long bytes)
    {
        long size = RoundSize(bytes);
        lock (_lock)
        {
            DrainDeferred();
            nint ptr;
            if (_free.TryGetValue(size, out var stack) && stack.Count > 0)
            {
                ptr = stack.Pop();
                _cached -= size;
                _reused++;
            }
            else if (!_memory.TryAllocate(size, out ptr))
            {
                long cachedBefore = _cached;
                ReleaseCache();
                if (!_memory.TryAllocate(size, out ptr))
                {
                    var (free, total) = _memory.MemoryInfo();
                    throw new CudaOutOfMemoryException(bytes, free, total, _allocated, cachedBefore, _device);
                }
                _deviceAllocs++;
            }
            else _deviceAllocs++;
            _live.Add(ptr, size);
            _allocated += size;
            if (_allocated > _peak) _peak = _allocated;
            return ptr;
        }
    }

    /// <summary>Returns a block to its free list (no CUDA call).</summary>
    internal void Free(nint ptr)
    {
        lock (_lock) FreeLocked(ptr);
    }

    /// <summary>From a finalizer: queue the block; the next allocation puts it back.</summary>
    internal void FreeDeferred(nint ptr) => _deferred.Enqueue(ptr);

    /// <summary>Gives every cached block back to the driver (waits for the stream first).</summary>
    public void EmptyCache()
    {
        lock (_lock)
        {
            DrainDeferred();
            ReleaseCache();
        }
    }

    private void FreeLocked(nint ptr)
    {
        if (!_live.Remove(ptr, out long size))
            throw new InvalidOperationException($"CUDA allocator on {_device}: block 0x{ptr:x} is not live (freed twice?)");
        _allocated -= size;
        if (!_free.TryGetValue(size, out var stack)) _free[size] = stack = new Stack<nint>();
        stack.Push(ptr);
        _cached += size;
    }

    private void DrainDeferred()
    {
        while (_deferred.TryDequeue(out var ptr))
        {
            _deferredCount++;
            FreeLocked(ptr);
        }
    }

    private void ReleaseCache()
    {
        if (_cached == 0) return;
        _memory.Synchronize(); // a cached block may still be read by queued work of its last owner
        foreach (var stack in _free.Values)
            while (stack.Count > 0) _memory.Free(stack.Pop());
        _free.Clear();
        _cached = 0;
    }
}

/// <summary>Device memory through the driver, synchronising with the backend's stream. <paramref name="enter"/>
/// makes the backend's context current, since the allocator may be used from any thread.</summary>
internal sealed class DriverDeviceMemory(Func<nint> stream, Action enter) : IDeviceMemory
{
    public bool TryAllocate(long bytes, out nint ptr)
    {
        enter();
        var r = Native.CudaDriver.cuMemAlloc_v2(out ulong p, (nuint)bytes);
        ptr = (nint)p;
        if (r == Native.CUresult.CUDA_ERROR_OUT_OF_MEMORY) return false;
        Native.CudaDriver.ThrowIfFailed(r, $"cuMemAlloc_v2({bytes} bytes)");
        return true;
    }

    public void Free(nint ptr)
    {
        enter();
        Native.CudaDriver.ThrowIfFailed(Native.CudaDriver.cuMemFree_v2((ulong)ptr));
    }

    public (long Free, long Total) MemoryInfo()
    {
        enter();
        Native.CudaDriver.ThrowIfFailed(Native.CudaDriver.cuMemGetInfo_v2(out var free, out var total));
        return ((long)free, (long)total);
    }

    public void Synchronize()
    {
        enter();
        Native.CudaDriver.ThrowIfFailed(Native.CudaDriver.cuStreamSynchronize(stream()));
    }
}
