// Bindings to cuDNN (libcudnn.so.{9,8} / cudnn64_*.dll): descriptors, convolution forward and
// backward with algorithm queries, and spatial batch normalisation. Names and enum values as in
// cudnn.h (cuDNN 8 and 9 share them for this legacy API; only cudnnStatus_t's error numbers
// differ between 8 and 9, so messages use cudnnGetErrorString rather than a table).
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ResidualEngine.Backends.Cuda;

namespace ResidualEngine.Native;

#pragma warning disable CA1707 // native names keep their underscores
#pragma warning disable CA1008

internal enum cudnnStatus_t
{
    CUDNN_STATUS_SUCCESS = 0,
}

internal enum cudnnDataType_t
{
    CUDNN_DATA_FLOAT = 0,
    CUDNN_DATA_DOUBLE = 1,
    CUDNN_DATA_HALF = 2,
    CUDNN_DATA_INT8 = 3,
    CUDNN_DATA_INT32 = 4,
    CUDNN_DATA_BFLOAT16 = 9,
    CUDNN_DATA_INT64 = 10,
}

internal enum cudnnTensorFormat_t
{
    CUDNN_TENSOR_NCHW = 0,
    CUDNN_TENSOR_NHWC = 1,
    CUDNN_TENSOR_NCHW_VECT_C = 2,
}

internal enum cudnnConvolutionMode_t
{
    CUDNN_CONVOLUTION = 0,
    CUDNN_CROSS_CORRELATION = 1,
}

internal enum cudnnMathType_t
{
    CUDNN_DEFAULT_MATH = 0,
    CUDNN_TENSOR_OP_MATH = 1,
    CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION = 2,
    CUDNN_FMA_MATH = 3,
}

internal enum cudnnDeterminism_t
{
    CUDNN_NON_DETERMINISTIC = 0,
    CUDNN_DETERMINISTIC = 1,
}

internal enum cudnnBatchNormMode_t
{
    CUDNN_BATCHNORM_PER_ACTIVATION = 0,
    CUDNN_BATCHNORM_SPATIAL = 1,
    CUDNN_BATCHNORM_SPATIAL_PERSISTENT = 2,
}

/// <summary>cudnnConvolutionFwdAlgo_t (IMPLICIT_GEMM = 0 ... WINOGRAD_NONFUSED = 7).</summary>
internal enum cudnnConvolutionFwdAlgo_t
{
    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM = 0,
    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM = 1,
    CUDNN_CONVOLUTION_FWD_ALGO_GEMM = 2,
    CUDNN_CONVOLUTION_FWD_ALGO_DIRECT = 3,
    CUDNN_CONVOLUTION_FWD_ALGO_FFT = 4,
    CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING = 5,
    CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD = 6,
    CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED = 7,
    CUDNN_CONVOLUTION_FWD_ALGO_COUNT = 8,
}

internal enum cudnnConvolutionBwdDataAlgo_t
{
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 = 0,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_1 = 1,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT = 2,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING = 3,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD = 4,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED = 5,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT = 6,
}

internal enum cudnnConvolutionBwdFilterAlgo_t
{
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 = 0,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 = 1,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT = 2,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3 = 3,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD = 4,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED = 5,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING = 6,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT = 7,
}

/// <summary>cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t: the three share this layout
/// (algo, status, time, memory, determinism, mathType, reserved[3]); 48 bytes on 64-bit.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct cudnnConvolutionAlgoPerf_t
{
    public int algo;
    public cudnnStatus_t status;
    public float time;
    public nuint memory;
    public cudnnDeterminism_t determinism;
    public cudnnMathType_t mathType;
    public int reserved0, reserved1, reserved2;
}

internal static unsafe partial class Cudnn
{
    private const string Lib = LibraryResolver.CudnnName;

    /// <summary>The smallest eps every cuDNN version accepts for batch normalisation (older headers: 1e-5).</summary>
    internal const double CUDNN_BN_MIN_EPSILON = 1e-5;

    static Cudnn() => LibraryResolver.EnsureRegistered();

    [LibraryImport(Lib)] internal static partial nuint cudnnGetVersion();
    [LibraryImport(Lib)] internal static partial nint cudnnGetErrorString(cudnnStatus_t status);
    /// <summary>cuDNN 9 and later: the detailed message of the last failure on this thread.</summary>
    [LibraryImport(Lib)] internal static partial void cudnnGetLastErrorString(byte* message, nuint max_size);
    [LibraryImport(Lib)] internal static partial cudnnStatus_t cudnnCreate(out nint handle);
    [LibraryImport(Lib)] internal static partial cudnnStatus_t cudnnDestroy(nint handle);
    [LibraryImport(Lib)] internal static partial cudnnStatus_t cudnnSetStream(nint handle, nint streamId);

    [LibraryImport(Lib)] internal static partial cudnnStatus_t cudnnCreateTensorDescriptor(out nint tensorDesc);
    [LibraryImport(Lib)] internal static partial cudnnStatus_t cudnnDestroyTensorDescriptor(nint tensorDesc);
    [LibraryImport(Lib)]
    internal static partial cudnnStatus_t cudnnSetTensor4dDescriptor(nint tensorDesc, cudnnTensorFormat_t format,
        cudnnDataType_t dataType, int n, int c, int h, int w);

    [LibraryImport(Lib)] internal static partial cudnnStatus_t cudnnCreateFilterDescriptor(out nint filterDesc);
    [LibraryImport(Lib)] internal static partial cudnnStatus_t cudnnDestroyFilterDescriptor(nint filterDesc);
    /// <remarks>Argument order differs from the tensor version: data type first, then format.</remarks>
    [LibraryImport(Lib)]
    internal static partial cudnnStatus_t cudnnSetFilter4dDescriptor(nint filterDesc, cudnnDataType_t dataType,
        cudnnTensorFormat_t format, int k, int c, int h, int w);

    [LibraryImport(Lib)] internal static partial cudnnStatus_t cudnnCreateConvolutionDescriptor(out nint convDesc);
    [LibraryImport(Lib)] internal static partial cudnnStatus_t cudnnDestroyConvolutionDescriptor(nint convDesc);
    [LibraryImport(Lib)]
    internal static partial cudnnStatus_t cudnnSetConvolution2dDescriptor(nint convDesc, int pad_h, int pad_w, int u, int v,
        int dilation_h, int dilation_w, cudnnConvolutionMode_t mode, cudnnDataType_t computeType);
    [LibraryImport(Lib)] internal static partial cudnnStatus_t cudnnSetConvolutionGroupCount(nint convDesc, int groupCount);
    [LibraryImport(Lib)] internal static partial cudnnStatus_t cudnnSetConvolutionMathType(nint convDesc, cudnnMathType_t mathType);

    [LibraryImport(Lib)]
    internal static partial cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(nint handle, nint srcDesc, nint filterDesc,
        nint convDesc, nint destDesc, int requestedAlgoCount, out int returnedAlgoCount, cudnnConvolutionAlgoPerf_t* perfResults);
    [LibraryImport(Lib)]
    internal static partial cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(nint handle, nint xDesc, nint x, nint wDesc,
        nint w, nint convDesc, nint yDesc, nint y, int requestedAlgoCount, out int returnedAlgoCount,
        cudnnConvolutionAlgoPerf_t* perfResults, nint workSpace, nuint workSpaceSizeInBytes);
    [LibraryImport(Lib)]
    internal static partial cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(nint handle, nint xDesc, nint wDesc,
        nint convDesc, nint yDesc, int algo, out nuint sizeInBytes);
    [LibraryImport(Lib)]
    internal static partial cudnnStatus_t cudnnConvolutionForward(nint handle, void* alpha, nint xDesc, nint x, nint wDesc,
        nint w, nint convDesc, int algo, nint workSpace, nuint workSpaceSizeInBytes, void* beta, nint yDesc, nint y);

    [LibraryImport(Lib)]
    internal static partial cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(nint handle, nint filterDesc,
        nint diffDesc, nint convDesc, nint gradDesc, int requestedAlgoCount, out int returnedAlgoCount,
        cudnnConvolutionAlgoPerf_t* perfResults);
    [LibraryImport(Lib)]
    internal static partial cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(nint handle, nint wDesc, nint w,
        nint dyDesc, nint dy, nint convDesc, nint dxDesc, nint dx, int requestedAlgoCount, out int returnedAlgoCount,
        cudnnConvolutionAlgoPerf_t* perfResults, nint workSpace, nuint workSpaceSizeInBytes);
    [LibraryImport(Lib)]
    internal static partial cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(nint handle, nint wDesc, nint dyDesc,
        nint convDesc, nint dxDesc, int algo, out nuint sizeInBytes);
    [LibraryImport(Lib)]
    internal static partial cudnnStatus_t cudnnConvolutionBackwardData(nint handle, void* alpha, nint wDesc, nint w,
        nint dyDesc, nint dy, nint convDesc, int algo, nint workSpace, nuint workSpaceSizeInBytes, void* beta,
        nint dxDesc, nint dx);

    [LibraryImport(Lib)]
    internal static partial cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(nint handle, nint srcDesc,
        nint diffDesc, nint convDesc, nint gradDesc, int requestedAlgoCount, out int returnedAlgoCount,
        cudnnConvolutionAlgoPerf_t* perfResults);
    [LibraryImport(Lib)]
    internal static partial cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(nint handle, nint xDesc, nint x,
        nint dyDesc, nint y, nint convDesc, nint dwDesc, nint dw, int requestedAlgoCount, out int returnedAlgoCount,
        cudnnConvolutionAlgoPerf_t* perfResults, nint workSpace, nuint workSpaceSizeInBytes);
    [LibraryImport(Lib)]
    internal static partial cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(nint handle, nint xDesc,
        nint dyDesc, nint convDesc, nint gradDesc, int algo, out nuint sizeInBytes);
    [LibraryImport(Lib)]
    internal static partial cudnnStatus_t cudnnConvolutionBackwardFilter(nint handle, void* alpha, nint xDesc, nint x,
        nint dyDesc, nint dy, nint convDesc, int algo, nint workSpace, nuint workSpaceSizeInBytes, void* beta,
        nint dwDesc, nint dw);

    [LibraryImport(Lib)]
    internal static partial cudnnStatus_t cudnnDeriveBNTensorDescriptor(nint derivedBnDesc, nint xDesc, cudnnBatchNormMode_t mode);
    [LibraryImport(Lib)]
    internal static partial cudnnStatus_t cudnnBatchNormalizationForwardTraining(nint handle, cudnnBatchNormMode_t mode,
        void* alpha, void* beta, nint xDesc, nint x, nint yDesc, nint y, nint bnScaleBiasMeanVarDesc, nint bnScale,
        nint bnBias, double exponentialAverageFactor, nint resultRunningMean, nint resultRunningVariance, double epsilon,
        nint resultSaveMean, nint resultSaveInvVariance);
    [LibraryImport(Lib)]
    internal static partial cudnnStatus_t cudnnBatchNormalizationForwardInference(nint handle, cudnnBatchNormMode_t mode,
        void* alpha, void* beta, nint xDesc, nint x, nint yDesc, nint y, nint bnScaleBiasMeanVarDesc, nint bnScale,
        nint bnBias, nint estimatedMean, nint estimatedVariance, double epsilon);
    [LibraryImport(Lib)]
    internal static partial cudnnStatus_t cudnnBatchNormalizationBackward(nint handle, cudnnBatchNormMode_t mode,
        void* alphaDataDiff, void* betaDataDiff, void* alphaParamDiff, void* betaParamDiff, nint xDesc, nint x,
        nint dyDesc, nint dy, nint dxDesc, nint dx, nint dBnScaleBiasDesc, nint bnScale, nint dBnScaleResult,
        nint dBnBiasResult, double epsilon, nint savedMean, nint savedInvVariance);

    internal static void ThrowIfFailed(cudnnStatus_t status, [CallerArgumentExpression(nameof(status))] string call = "")
    {
        if (status != cudnnStatus_t.CUDNN_STATUS_SUCCESS)
            throw new CudaException("cuDNN", call, (int)status, ErrorString(status), LastError());
    }

    private static string LastError()
    {
        try
        {
            var buf = stackalloc byte[1024];
            buf[0] = 0;
            cudnnGetLastErrorString(buf, 1024);
            var s = Marshal.PtrToStringUTF8((nint)buf);
            if (!string.IsNullOrWhiteSpace(s)) return s;
        }
        catch (EntryPointNotFoundException) { } // cuDNN 8 has no detailed messages
        return "cuDNN gave no further detail";
    }

    /// <summary>cudnnGetErrorString's name for a status (e.g. CUDNN_STATUS_BAD_PARAM).</summary>
    internal static string ErrorString(cudnnStatus_t status)
    {
        try
        {
            var p = cudnnGetErrorString(status);
            if (p != 0) return Marshal.PtrToStringUTF8(p) ?? $"cudnnStatus_t {(int)status}";
        }
        catch (EntryPointNotFoundException) { }
        return $"cudnnStatus_t {(int)status}";
    }

    /// <summary>cuDNN's version: cuDNN 8 encodes major*1000 + minor*100 + patch, cuDNN 9 major*10000 + minor*100 + patch.</summary>
    internal static (int Major, int Minor, int Patch) Version() => DecodeVersion((long)cudnnGetVersion());

    internal static (int Major, int Minor, int Patch) DecodeVersion(long v) =>
        v >= 90000 ? ((int)(v / 10000), (int)(v % 10000 / 100), (int)(v % 100)) : ((int)(v / 1000), (int)(v % 1000 / 100), (int)(v % 100));
}

/// <summary>A cuDNN handle, destroyed with cudnnDestroy.</summary>
internal sealed class CudnnHandle : NativeHandle
{
    internal static CudnnHandle Create()
    {
        Cudnn.ThrowIfFailed(Cudnn.cudnnCreate(out var h));
        return Own(new CudnnHandle(), h);
    }

    protected override bool ReleaseHandle() => Cudnn.cudnnDestroy(handle) == cudnnStatus_t.CUDNN_STATUS_SUCCESS;
}
