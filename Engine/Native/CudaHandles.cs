// SafeHandles for the long-lived CUDA driver objects the backend owns: the device's primary
// context, its stream, events, loaded modules and pinned host buffers. Each is released once
// with the matching driver call. They live as long as the backend (in practice the process).
using System.Runtime.InteropServices;

namespace ResidualEngine.Native;

/// <summary>A retained primary context of one device (released with cuDevicePrimaryCtxRelease_v2).</summary>
internal sealed class CudaContextHandle : SafeHandle
{
    private CudaContextHandle(int device) : base(0, true) => Device = device;

    public int Device { get; }
    public override bool IsInvalid => handle == 0;

    internal static CudaContextHandle Retain(int device)
    {
        CudaDriver.ThrowIfFailed(CudaDriver.cuDevicePrimaryCtxRetain(out var ctx, device));
        var h = new CudaContextHandle(device);
        h.SetHandle(ctx);
        return h;
    }

    protected override bool ReleaseHandle() => CudaDriver.cuDevicePrimaryCtxRelease_v2(Device) == CUresult.CUDA_SUCCESS;
}

/// <summary>A non-blocking stream (does not synchronise with the legacy default stream).</summary>
internal sealed class CudaStreamHandle : SafeHandle
{
    private CudaStreamHandle() : base(0, true) { }

    public override bool IsInvalid => handle == 0;

    internal static CudaStreamHandle Create()
    {
        CudaDriver.ThrowIfFailed(CudaDriver.cuStreamCreate(out var s, CudaDriver.CU_STREAM_NON_BLOCKING));
        var h = new CudaStreamHandle();
        h.SetHandle(s);
        return h;
    }

    protected override bool ReleaseHandle() => CudaDriver.cuStreamDestroy_v2(handle) == CUresult.CUDA_SUCCESS;
}

/// <summary>An event without timing, used to know when a staging buffer may be reused.</summary>
internal sealed class CudaEventHandle : SafeHandle
{
    private CudaEventHandle() : base(0, true) { }

    public override bool IsInvalid => handle == 0;

    internal static CudaEventHandle Create()
    {
        CudaDriver.ThrowIfFailed(CudaDriver.cuEventCreate(out var e, CudaDriver.CU_EVENT_DISABLE_TIMING));
        var h = new CudaEventHandle();
        h.SetHandle(e);
        return h;
    }

    protected override bool ReleaseHandle() => CudaDriver.cuEventDestroy_v2(handle) == CUresult.CUDA_SUCCESS;
}

/// <summary>A module loaded from a CUBIN or PTX image.</summary>
internal sealed class CudaModuleHandle : SafeHandle
{
    private CudaModuleHandle() : base(0, true) { }

    public override bool IsInvalid => handle == 0;

    internal static unsafe CudaModuleHandle Load(byte[] image, string what)
    {
        nint m;
        fixed (byte* p = image)
        {
            var r = CudaDriver.cuModuleLoadData(out m, p);
            if (r != CUresult.CUDA_SUCCESS) throw CudaDriver.Error(r, $"cuModuleLoadData({what})");
        }
        var h = new CudaModuleHandle();
        h.SetHandle(m);
        return h;
    }

    protected override bool ReleaseHandle() => CudaDriver.cuModuleUnload(handle) == CUresult.CUDA_SUCCESS;
}

/// <summary>Page-locked host memory from cuMemAllocHost_v2 (staging for asynchronous copies).</summary>
internal sealed class PinnedHostBuffer : SafeHandle
{
    private PinnedHostBuffer(long bytes) : base(0, true) => Bytes = bytes;

    public long Bytes { get; }
    public override bool IsInvalid => handle == 0;
    public nint Pointer => handle;

    internal static PinnedHostBuffer Allocate(long bytes)
    {
        CudaDriver.ThrowIfFailed(CudaDriver.cuMemAllocHost_v2(out var p, (nuint)bytes));
        var h = new PinnedHostBuffer(bytes);
        h.SetHandle(p);
        return h;
    }

    protected override bool ReleaseHandle() => CudaDriver.cuMemFreeHost(handle) == CUresult.CUDA_SUCCESS;
}
