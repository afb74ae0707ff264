// Host memory for CPU tensors: 64-byte aligned blocks from the host caching allocator (SIMD-friendly,
// and the same pointer-based access the CUDA backend has). Released blocks go back to the cache;
// the finalizer of a storage nobody released frees its block directly and counts the leak.
namespace ResidualEngine.Backends.Cpu;

internal sealed class CpuStorage : Storage
{
    private nint _ptr;
    private readonly long _size;

    public CpuStorage(long bytes) : base(bytes, Device.Cpu) => (_ptr, _size) = HostAllocator.Rent(Math.Max(bytes, 1));

    public override nint Pointer => _ptr;

    protected override void Free()
    {
        HostAllocator.Return(_ptr, _size);
        _ptr = 0;
    }

    ~CpuStorage()
    {
        if (_ptr == 0) return;
        HostAllocator.ReleaseDirect(_ptr, _size);
        _ptr = 0;
        CountLeak();
    }
}
