// Bindings to the CUDA driver API (libcuda.so.1 / nvcuda.dll), the subset the backend uses.
// Entry points carry the exact exported names (the _v2 suffixes are what cuda.h's #defines map
// to); CUresult values are those of cuda.h. Device pointers (CUdeviceptr) are 64-bit unsigned.
// Every status goes through ThrowIfFailed, which names the call (its source text) and the error,
// and turns sticky errors into CudaFatalException.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ResidualEngine.Backends.Cuda;

namespace ResidualEngine.Native;

#pragma warning disable CA1707 // native names keep their underscores
#pragma warning disable CA1008 // CUresult has CUDA_SUCCESS = 0, named as in the header

internal enum CUresult
{
    CUDA_SUCCESS = 0,
    CUDA_ERROR_INVALID_VALUE = 1,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_NOT_INITIALIZED = 3,
    CUDA_ERROR_DEINITIALIZED = 4,
    CUDA_ERROR_STUB_LIBRARY = 34,
    CUDA_ERROR_DEVICE_UNAVAILABLE = 46,
    CUDA_ERROR_NO_DEVICE = 100,
    CUDA_ERROR_INVALID_DEVICE = 101,
    CUDA_ERROR_INVALID_IMAGE = 200,
    CUDA_ERROR_INVALID_CONTEXT = 201,
    CUDA_ERROR_NO_BINARY_FOR_GPU = 209,
    CUDA_ERROR_ECC_UNCORRECTABLE = 214,
    CUDA_ERROR_INVALID_PTX = 218,
    CUDA_ERROR_UNSUPPORTED_PTX_VERSION = 222,
    CUDA_ERROR_INVALID_HANDLE = 400,
    CUDA_ERROR_NOT_FOUND = 500,
    CUDA_ERROR_NOT_READY = 600,
    CUDA_ERROR_ILLEGAL_ADDRESS = 700,
    CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES = 701,
    CUDA_ERROR_LAUNCH_TIMEOUT = 702,
    CUDA_ERROR_ASSERT = 710,
    CUDA_ERROR_HARDWARE_STACK_ERROR = 714,
    CUDA_ERROR_ILLEGAL_INSTRUCTION = 715,
    CUDA_ERROR_MISALIGNED_ADDRESS = 716,
    CUDA_ERROR_INVALID_ADDRESS_SPACE = 717,
    CUDA_ERROR_INVALID_PC = 718,
    CUDA_ERROR_LAUNCH_FAILED = 719,
    CUDA_ERROR_NOT_PERMITTED = 800,
    CUDA_ERROR_NOT_SUPPORTED = 801,
    CUDA_ERROR_SYSTEM_DRIVER_MISMATCH = 803,
    CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE = 804,
    CUDA_ERROR_UNKNOWN = 999,
}

internal enum CUdevice_attribute
{
    CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1,
    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
}

internal static unsafe partial class CudaDriver
{
    private const string Lib = LibraryResolver.DriverName;

    internal const uint CU_STREAM_NON_BLOCKING = 0x1;
    internal const uint CU_EVENT_DISABLE_TIMING = 0x2;

    static CudaDriver() => LibraryResolver.EnsureRegistered();

    [LibraryImport(Lib)] internal static partial CUresult cuInit(uint flags);
    [LibraryImport(Lib)] internal static partial CUresult cuDriverGetVersion(out int driverVersion);
    [LibraryImport(Lib)] internal static partial CUresult cuDeviceGetCount(out int count);
    [LibraryImport(Lib)] internal static partial CUresult cuDeviceGet(out int device, int ordinal);
    [LibraryImport(Lib)] internal static partial CUresult cuDeviceGetName(byte* name, int len, int dev);
    [LibraryImport(Lib)] internal static partial CUresult cuDeviceGetAttribute(out int pi, CUdevice_attribute attrib, int dev);
    [LibraryImport(Lib)] internal static partial CUresult cuDeviceTotalMem_v2(out nuint bytes, int dev);

    [LibraryImport(Lib)] internal static partial CUresult cuDevicePrimaryCtxRetain(out nint pctx, int dev);
    [LibraryImport(Lib)] internal static partial CUresult cuDevicePrimaryCtxRelease_v2(int dev);
    [LibraryImport(Lib)] internal static partial CUresult cuCtxSetCurrent(nint ctx);
    [LibraryImport(Lib)] internal static partial CUresult cuCtxSynchronize();

    [LibraryImport(Lib)] internal static partial CUresult cuStreamCreate(out nint phStream, uint flags);
    [LibraryImport(Lib)] internal static partial CUresult cuStreamDestroy_v2(nint hStream);
    [LibraryImport(Lib)] internal static partial CUresult cuStreamSynchronize(nint hStream);
    [LibraryImport(Lib)] internal static partial CUresult cuEventCreate(out nint phEvent, uint flags);
    [LibraryImport(Lib)] internal static partial CUresult cuEventDestroy_v2(nint hEvent);
    [LibraryImport(Lib)] internal static partial CUresult cuEventRecord(nint hEvent, nint hStream);
    [LibraryImport(Lib)] internal static partial CUresult cuEventSynchronize(nint hEvent);
    [LibraryImport(Lib)] internal static partial CUresult cuStreamWaitEvent(nint hStream, nint hEvent, uint flags);

    [LibraryImport(Lib)] internal static partial CUresult cuMemAlloc_v2(out ulong dptr, nuint bytesize);
    [LibraryImport(Lib)] internal static partial CUresult cuMemFree_v2(ulong dptr);
    [LibraryImport(Lib)] internal static partial CUresult cuMemAllocHost_v2(out nint pp, nuint bytesize);
    [LibraryImport(Lib)] internal static partial CUresult cuMemFreeHost(nint p);
    [LibraryImport(Lib)] internal static partial CUresult cuMemGetInfo_v2(out nuint free, out nuint total);
    [LibraryImport(Lib)] internal static partial CUresult cuMemcpyHtoDAsync_v2(ulong dstDevice, void* srcHost, nuint byteCount, nint hStream);
    [LibraryImport(Lib)] internal static partial CUresult cuMemcpyDtoHAsync_v2(void* dstHost, ulong srcDevice, nuint byteCount, nint hStream);
    [LibraryImport(Lib)] internal static partial CUresult cuMemcpyDtoDAsync_v2(ulong dstDevice, ulong srcDevice, nuint byteCount, nint hStream);
    [LibraryImport(Lib)] internal static partial CUresult cuMemsetD8Async(ulong dstDevice, byte uc, nuint n, nint hStream);
    [LibraryImport(Lib)] internal static partial CUresult cuMemsetD16Async(ulong dstDevice, ushort us, nuint n, nint hStream);
    [LibraryImport(Lib)] internal static partial CUresult cuMemsetD32Async(ulong dstDevice, uint ui, nuint n, nint hStream);

    [LibraryImport(Lib)] internal static partial CUresult cuModuleLoadData(out nint module, void* image);
    [LibraryImport(Lib)] internal static partial CUresult cuModuleUnload(nint hmod);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial CUresult cuModuleGetFunction(out nint hfunc, nint hmod, string name);

    [LibraryImport(Lib)]
    internal static partial CUresult cuLaunchKernel(nint f, uint gridDimX, uint gridDimY, uint gridDimZ,
        uint blockDimX, uint blockDimY, uint blockDimZ, uint sharedMemBytes, nint hStream, void** kernelParams, void** extra);

    [LibraryImport(Lib)] internal static partial CUresult cuGetErrorName(CUresult error, out nint pStr);
    [LibraryImport(Lib)] internal static partial CUresult cuGetErrorString(CUresult error, out nint pStr);

    /// <summary>Errors after which the context is corrupted (cuda.h: "the context cannot be used").</summary>
    internal static bool IsSticky(CUresult r) => r is CUresult.CUDA_ERROR_ILLEGAL_ADDRESS or CUresult.CUDA_ERROR_LAUNCH_TIMEOUT
        or CUresult.CUDA_ERROR_ASSERT or CUresult.CUDA_ERROR_HARDWARE_STACK_ERROR or CUresult.CUDA_ERROR_ILLEGAL_INSTRUCTION
        or CUresult.CUDA_ERROR_MISALIGNED_ADDRESS or CUresult.CUDA_ERROR_INVALID_ADDRESS_SPACE or CUresult.CUDA_ERROR_INVALID_PC
        or CUresult.CUDA_ERROR_LAUNCH_FAILED or CUresult.CUDA_ERROR_ECC_UNCORRECTABLE;

    internal static void ThrowIfFailed(CUresult result, [CallerArgumentExpression(nameof(result))] string call = "")
    {
        if (result != CUresult.CUDA_SUCCESS) throw Error(result, call);
    }

    internal static CudaException Error(CUresult result, string call)
    {
        var (name, description) = Describe(result);
        return IsSticky(result)
            ? new CudaFatalException(call, (int)result, name, description)
            : new CudaException("CUDA driver", call, (int)result, name, description);
    }

    /// <summary>The error's name and text from the driver (falls back to the enum name if the driver cannot say).</summary>
    internal static (string Name, string Description) Describe(CUresult result)
    {
        string name = Enum.IsDefined(result) ? result.ToString() : $"CUresult {(int)result}";
        string description = "no description available";
        try
        {
            if (cuGetErrorName(result, out var p) == CUresult.CUDA_SUCCESS && p != 0) name = Marshal.PtrToStringUTF8(p) ?? name;
            if (cuGetErrorString(result, out var s) == CUresult.CUDA_SUCCESS && s != 0) description = Marshal.PtrToStringUTF8(s) ?? description;
        }
        catch (DllNotFoundException) { }
        catch (EntryPointNotFoundException) { }
        return (name, description);
    }
}
