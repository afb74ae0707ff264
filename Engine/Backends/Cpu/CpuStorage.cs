// Host memory for CPU tensors: 64-byte aligned native memory (SIMD-friendly, and the same
// pointer-based access the CUDA backend has). Freed on release; the finalizer frees it too,
// which is safe on the CPU, and counts the leak.
using System.Runtime.InteropServices;

namespace ResidualEngine.Backends.Cpu;

internal sealed unsafe class CpuStorage : Storage
{
    private void* _ptr;

    public CpuStorage(long bytes) : base(bytes, Device.Cpu)
    {
        _ptr = NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1), 64);
        if (_ptr is null) throw new OutOfMemoryException($"cannot allocate {bytes} bytes of host memory");
    }

    public override nint Pointer => (nint)_ptr;

    protected override void Free()
    {
        NativeMemory.AlignedFree(_ptr);
        _ptr = null;
    }

    ~CpuStorage()
    {
        if (_ptr is null) return;
        NativeMemory.AlignedFree(_ptr);
        _ptr = null;
        CountLeak();
    }
}
