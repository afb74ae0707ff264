// SafeHandles for the long-lived CUDA driver objects the backend owns: the device's primary
// context, its stream, events, loaded modules and pinned host buffers. Each is released once
// with the matching driver call. They live as long as the backend (in practice the process).
// NativeHandle is the common base of these and of the cuBLAS and cuDNN handles: 0 means none, and
// a subclass says only how a handle is made and how it is released.
using System.Runtime.InteropServices;

namespace ResidualEngine.Native;

/// <summary>A native object owned by a SafeHandle, invalid when 0; subclasses create it and release it once.</summary>
internal abstract class NativeHandle : SafeHandle
{
    protected NativeHandle() : base(0, true) { }

    public override bool IsInvalid => handle == 0;

    /// <summary>Gives <paramref name="value"/>, just created, to <paramref name="owner"/> to release.</summary>
    protected static T Own<T>(T owner, nint value) where T : NativeHandle
    {
        owner.SetHandle(value);
        return owner;
    }
}

/// <summary>A retained primary context of one device (released with cuDevicePrimaryCtxRelease_v2).</summary>
internal sealed class CudaContextHandle : NativeHandle
{
    private CudaContextHandle(int device) => Device = device;

    public int Device { get; }

    internal static CudaContextHandle Retain(int device)
    {
        CudaDriver.ThrowIfFailed(CudaDriver.cuDevicePrimaryCtxRetain(out var ctx, device));
        return Own(new CudaContextHandle(device), ctx);
    }

    protected override bool ReleaseHandle() => CudaDriver.cuDevicePrimaryCtxRelease_v2(Device) == CUresult.CUDA_SUCCESS;
}

/// <summary>A non-blocking stream (does not synchronise with the legacy default stream).</summary>
internal sealed class CudaStreamHandle : NativeHandle
{
    internal static CudaStreamHandle Create()
    {
        CudaDriver.ThrowIfFailed(CudaDriver.cuStreamCreate(out var s, CudaDriver.CU_STREAM_NON_BLOCKING));
        return Own(new CudaStreamHandle(), s);
    }

    protected override bool ReleaseHandle() => CudaDriver.cuStreamDestroy_v2(handle) == CUresult.CUDA_SUCCESS;
}

/// <summary>An event without timing, used to know when a staging buffer may be reused.</summary>
internal sealed class CudaEventHandle : NativeHandle
{
    internal static CudaEventHandle Create()
    {
        CudaDriver.ThrowIfFailed(CudaDriver.cuEventCreate(out var e, CudaDriver.CU_EVENT_DISABLE_TIMING));
        return Own(new CudaEventHandle(), e);
    }

    protected override bool ReleaseHandle() => CudaDriver.cuEventDestroy_v2(handle) == CUresult.CUDA_SUCCESS;
}

/// <summary>A module loaded from a CUBIN or PTX image.</summary>
internal sealed class CudaModuleHandle : NativeHandle
{
    internal static unsafe CudaModuleHandle Load(byte[] image, string what)
    {
        nint m;
        fixed (byte* p = image)
        {
            var r = CudaDriver.cuModuleLoadData(out m, p);
            if (r != CUresult.CUDA_SUCCESS) throw CudaDriver.Error(r, $"cuModuleLoadData({what})");
        }
        return Own(new CudaModuleHandle(), m);
    }

    protected override bool ReleaseHandle() => CudaDriver.cuModuleUnload(handle) == CUresult.CUDA_SUCCESS;
}

/// <summary>Page-locked host memory from cuMemAllocHost_v2 (staging for asynchronous copies).</summary>
internal sealed class PinnedHostBuffer : NativeHandle
{
    private PinnedHostBuffer(long bytes) => Bytes = bytes;

    public long Bytes { get; }
    public nint Pointer => handle;

    internal static PinnedHostBuffer Allocate(long bytes)
    {
        CudaDriver.ThrowIfFailed(CudaDriver.cuMemAllocHost_v2(out var p, (nuint)bytes));
        return Own(new PinnedHostBuffer(bytes), p);
    }

    protected override bool ReleaseHandle() => CudaDriver.cuMemFreeHost(handle) == CUresult.CUDA_SUCCESS;
}
