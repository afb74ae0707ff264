// Bindings to cuBLAS (libcublas.so.{13,12,11} / cublas64_*.dll): handle management, math mode and
// GEMM. Names are the exported _v2 symbols; enum values as in cublas_api.h and library_types.h.
// cuBLAS is column-major; CudaDense maps our row-major GEMM onto it by swapping the operands.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ResidualEngine.Backends.Cuda;

namespace ResidualEngine.Native;

#pragma warning disable CA1707 // native names keep their underscores
#pragma warning disable CA1008

internal enum cublasStatus_t
{
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_ARCH_MISMATCH = 8,
    CUBLAS_STATUS_MAPPING_ERROR = 11,
    CUBLAS_STATUS_EXECUTION_FAILED = 13,
    CUBLAS_STATUS_INTERNAL_ERROR = 14,
    CUBLAS_STATUS_NOT_SUPPORTED = 15,
    CUBLAS_STATUS_LICENSE_ERROR = 16,
}

internal enum cublasOperation_t
{
    CUBLAS_OP_N = 0,
    CUBLAS_OP_T = 1,
    CUBLAS_OP_C = 2,
}

[Flags]
internal enum cublasMath_t
{
    CUBLAS_DEFAULT_MATH = 0,
    CUBLAS_TENSOR_OP_MATH = 1,
    CUBLAS_PEDANTIC_MATH = 2,
    CUBLAS_TF32_TENSOR_OP_MATH = 3,
    CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION = 16,
}

internal enum cudaDataType
{
    CUDA_R_32F = 0,
    CUDA_R_64F = 1,
    CUDA_R_16F = 2,
    CUDA_R_16BF = 14,
}

internal enum cublasComputeType_t
{
    CUBLAS_COMPUTE_32F = 68,
    CUBLAS_COMPUTE_32F_PEDANTIC = 69,
    CUBLAS_COMPUTE_64F = 70,
    CUBLAS_COMPUTE_32F_FAST_TF32 = 77,
}

internal enum libraryPropertyType
{
    MAJOR_VERSION = 0,
    MINOR_VERSION = 1,
    PATCH_LEVEL = 2,
}

internal static unsafe partial class Cublas
{
    private const string Lib = LibraryResolver.CublasName;
    internal const int CUBLAS_GEMM_DEFAULT = -1;

    static Cublas() => LibraryResolver.EnsureRegistered();

    [LibraryImport(Lib)] internal static partial cublasStatus_t cublasCreate_v2(out nint handle);
    [LibraryImport(Lib)] internal static partial cublasStatus_t cublasDestroy_v2(nint handle);
    [LibraryImport(Lib)] internal static partial cublasStatus_t cublasSetStream_v2(nint handle, nint streamId);
    [LibraryImport(Lib)] internal static partial cublasStatus_t cublasSetMathMode(nint handle, cublasMath_t mode);
    [LibraryImport(Lib)] internal static partial cublasStatus_t cublasGetProperty(libraryPropertyType type, out int value);

    [LibraryImport(Lib)]
    internal static partial cublasStatus_t cublasSgemm_v2(nint handle, cublasOperation_t transa, cublasOperation_t transb,
        int m, int n, int k, float* alpha, nint A, int lda, nint B, int ldb, float* beta, nint C, int ldc);

    [LibraryImport(Lib)]
    internal static partial cublasStatus_t cublasDgemm_v2(nint handle, cublasOperation_t transa, cublasOperation_t transb,
        int m, int n, int k, double* alpha, nint A, int lda, nint B, int ldb, double* beta, nint C, int ldc);

    /// <summary>Mixed-precision GEMM (F16/BF16 storage with F32 accumulation) for later use.</summary>
    [LibraryImport(Lib)]
    internal static partial cublasStatus_t cublasGemmEx(nint handle, cublasOperation_t transa, cublasOperation_t transb,
        int m, int n, int k, void* alpha, nint A, cudaDataType Atype, int lda, nint B, cudaDataType Btype, int ldb,
        void* beta, nint C, cudaDataType Ctype, int ldc, cublasComputeType_t computeType, int algo);

    internal static void ThrowIfFailed(cublasStatus_t status, [CallerArgumentExpression(nameof(status))] string call = "")
    {
        if (status != cublasStatus_t.CUBLAS_STATUS_SUCCESS)
            throw new CudaException("cuBLAS", call, (int)status, StatusName(status), StatusText(status));
    }

    internal static string StatusName(cublasStatus_t s) => Enum.IsDefined(s) ? s.ToString() : $"cublasStatus_t {(int)s}";

    private static string StatusText(cublasStatus_t s) => s switch
    {
        cublasStatus_t.CUBLAS_STATUS_NOT_INITIALIZED => "cuBLAS was not initialised (the CUDA context or driver is not usable)",
        cublasStatus_t.CUBLAS_STATUS_ALLOC_FAILED => "cuBLAS could not allocate resources (device memory is exhausted)",
        cublasStatus_t.CUBLAS_STATUS_INVALID_VALUE => "an unsupported value or parameter was passed",
        cublasStatus_t.CUBLAS_STATUS_ARCH_MISMATCH => "the device does not support this operation",
        cublasStatus_t.CUBLAS_STATUS_MAPPING_ERROR => "access to GPU memory failed",
        cublasStatus_t.CUBLAS_STATUS_EXECUTION_FAILED => "the GPU program failed to execute",
        cublasStatus_t.CUBLAS_STATUS_INTERNAL_ERROR => "an internal cuBLAS operation failed",
        cublasStatus_t.CUBLAS_STATUS_NOT_SUPPORTED => "the functionality requested is not supported",
        cublasStatus_t.CUBLAS_STATUS_LICENSE_ERROR => "a licensing error occurred",
        _ => "unknown cuBLAS status",
    };

    /// <summary>cuBLAS's version as (major, minor, patch), without needing a GPU.</summary>
    internal static (int Major, int Minor, int Patch) Version()
    {
        ThrowIfFailed(cublasGetProperty(libraryPropertyType.MAJOR_VERSION, out int major));
        ThrowIfFailed(cublasGetProperty(libraryPropertyType.MINOR_VERSION, out int minor));
        ThrowIfFailed(cublasGetProperty(libraryPropertyType.PATCH_LEVEL, out int patch));
        return (major, minor, patch);
    }
}

/// <summary>A cuBLAS handle, destroyed with cublasDestroy_v2.</summary>
internal sealed class CublasHandle : NativeHandle
{
    internal static CublasHandle Create()
    {
        Cublas.ThrowIfFailed(Cublas.cublasCreate_v2(out var h));
        return Own(new CublasHandle(), h);
    }

    protected override bool ReleaseHandle() => Cublas.cublasDestroy_v2(handle) == cublasStatus_t.CUBLAS_STATUS_SUCCESS;
}
