// Device memory behind a CUDA tensor: a block from the backend's caching allocator. Releasing the
// last reference returns the block to the allocator's free list (no CUDA call, no sync). The
// finalizer never calls CUDA: a storage nobody released queues its block for the allocator's next
// allocation and counts a leak.
namespace ResidualEngine.Backends.Cuda;

internal sealed class CudaStorage : Storage
{
    private readonly CudaAllocator _allocator;
    private nint _ptr;

    private CudaStorage(CudaAllocator allocator, nint ptr, long bytes, Device device) : base(bytes, device)
    {
        _allocator = allocator;
        _ptr = ptr;
    }

    /// <summary>Allocates first, so a failed allocation leaves no half-built storage behind (and no counted bytes).</summary>
    internal static CudaStorage Create(CudaAllocator allocator, long bytes, Device device)
    {
        var ptr = allocator.Allocate(bytes);
        return new CudaStorage(allocator, ptr, bytes, device);
    }

    public override nint Pointer => _ptr;

    protected override void Free()
    {
        var p = _ptr;
        _ptr = 0;
        if (p != 0) _allocator.Free(p);
    }

    ~CudaStorage()
    {
        var p = _ptr;
        if (p == 0) return;
        _ptr = 0;
        _allocator.FreeDeferred(p);
        CountLeak();
    }
}
