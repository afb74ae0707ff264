// Typed errors of the CUDA backend. Recoverable failures (out of memory, a missing library, a
// kernel that does not compile, a bad argument to cuDNN) leave the device usable; sticky errors
// (an illegal address or a failed launch) poison the CUDA context, and CudaFatalException says
// that the process must restart. Every message names the failing call.
namespace ResidualEngine.Backends.Cuda;

/// <summary>A failed call into the CUDA driver, NVRTC, cuBLAS or cuDNN; the device is still usable.</summary>
public class CudaException : InvalidOperationException
{
    public CudaException(string library, string call, int code, string codeName, string description)
        : this($"{library}: {call} failed with {codeName} ({code}): {description}", library, call, code, codeName) { }

    protected CudaException(string message, string library, string call, int code, string codeName) : base(message)
    {
        Library = library;
        Call = call;
        Code = code;
        CodeName = codeName;
    }

    public string Library { get; }
    public string Call { get; }
    /// <summary>The library's status value (CUresult, nvrtcResult, cublasStatus_t, cudnnStatus_t).</summary>
    public int Code { get; }
    public string CodeName { get; }
}

/// <summary>A sticky CUDA error: the context is corrupted and every later call fails. The process must restart.</summary>
public sealed class CudaFatalException(string call, int code, string codeName, string description)
    : CudaException(
        $"CUDA driver: {call} failed with {codeName} ({code}): {description}. This error is sticky: the CUDA context " +
        "is unusable and the process must restart to use the GPU again. Kernels run asynchronously, so the fault may " +
        "come from earlier work; run with CUDA_LAUNCH_BLOCKING=1 (or under compute-sanitizer) to find the failing kernel.",
        "CUDA driver", call, code, codeName);

/// <summary>Device memory ran out even after the allocator released its cache.</summary>
public sealed class CudaOutOfMemoryException(long requested, long free, long total, long allocated, long cached, Device device)
    : CudaException(
        $"CUDA out of memory on {device}: tried to allocate {Bytes(requested)}; the device has {Bytes(free)} free of " +
        $"{Bytes(total)}; this process holds {Bytes(allocated)} in live tensors and buffers and {Bytes(cached)} cached " +
        "(the cache was released and the allocation retried once). Reduce the batch size or free tensors.",
        "CUDA driver", "cuMemAlloc_v2", 2, "CUDA_ERROR_OUT_OF_MEMORY")
{
    public long RequestedBytes { get; } = requested;
    public long FreeBytes { get; } = free;
    public long TotalBytes { get; } = total;
    public long AllocatedBytes { get; } = allocated;
    public long CachedBytes { get; } = cached;

    internal static string Bytes(long b) => b switch
    {
        >= 1L << 30 => $"{b / (double)(1L << 30):0.##} GiB ({b} bytes)",
        >= 1L << 20 => $"{b / (double)(1L << 20):0.##} MiB ({b} bytes)",
        _ => $"{b} bytes",
    };
}

/// <summary>No usable CUDA device (no driver, cuInit failed, or zero devices); the reason says which.</summary>
public sealed class CudaUnavailableException(string reason) : NotSupportedException(reason);

/// <summary>NVRTC rejected a kernel source; <see cref="Log"/> holds the compiler's output.</summary>
public sealed class KernelCompileException(string fileName, string arch, IReadOnlyList<string> options, string log)
    : InvalidOperationException($"kernel {fileName} failed to compile for {arch} (options: {string.Join(' ', options)}):\n{log}")
{
    public string FileName { get; } = fileName;
    public string Arch { get; } = arch;
    public IReadOnlyList<string> Options { get; } = options;
    public string Log { get; } = log;
}
