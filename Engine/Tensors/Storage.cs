// A reference-counted block of memory on one device. Tensors (and the autograd nodes that
// save them) hold references; the last release frees it. A finalizer never calls CUDA:
// device storages hand their buffer back to the owning allocator's queue (see CudaStorage).
// Version counts every time the storage's address is handed out through Tensor.Pointer (every
// kernel read or write, every host access): a cache derived from the data (folded or packed
// weights in eval mode) records (storage, version) and is valid while both are unchanged.
namespace ResidualEngine;

public abstract class Storage
{
    private int _refs = 1;
    private long _version;

    protected Storage(long bytes, Device device)
    {
        Bytes = bytes;
        Device = device;
        TensorStats.OnAllocate(device.Type, bytes);
    }

    public long Bytes { get; }
    public Device Device { get; }

    /// <summary>Host pointer (CPU) or device pointer (CUDA) to the first byte.</summary>
    public abstract nint Pointer { get; }

    internal bool IsFreed => Volatile.Read(ref _refs) <= 0;

    /// <summary>
    /// Changes whenever the storage's address is handed out through <see cref="Tensor.Pointer"/>:
    /// any kernel that reads or writes it, an optimizer step, a state-dict load, a host read. It
    /// never changes while nothing touches the data, so a cache keyed on (storage, version) is
    /// invalidated by every in-place write (and, conservatively, by reads too).
    /// </summary>
    public long Version => Interlocked.Read(ref _version);

    /// <summary>Marks the data as possibly changed (Tensor.Pointer calls it).</summary>
    internal void Touch() => Interlocked.Increment(ref _version);

    /// <summary>True when exactly one handle holds this storage: writing into it cannot change anything another handle sees.</summary>
    internal bool IsExclusive => Volatile.Read(ref _refs) == 1;

    internal void AddRef()
    {
        if (Interlocked.Increment(ref _refs) <= 1)
            throw new ObjectDisposedException(nameof(Storage), "storage was already freed");
    }

    internal void Release()
    {
        int left = Interlocked.Decrement(ref _refs);
        if (left == 0)
        {
            Free();
            TensorStats.OnFree(Device.Type, Bytes);
            GC.SuppressFinalize(this);
        }
    }

    /// <summary>Returns the memory; called exactly once, on the thread that released the last reference.</summary>
    protected abstract void Free();

    /// <summary>Called by a subclass finalizer for a storage nobody released.</summary>
    protected void CountLeak() => TensorStats.OnLeak(Device.Type, Bytes);
}
