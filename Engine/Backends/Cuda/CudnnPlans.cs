// cuDNN state cached per shape, as cudnn-frontend's plan cache does: for each convolution
// direction and full geometry (dtype, memory format, N C H W, K R S, P Q, strides, pads, dilations,
// groups, math and determinism settings) the descriptors, the chosen algorithm and its workspace size are made once;
// likewise the tensor and derived BN descriptors for batch normalisation. Descriptors live as long
// as the backend. The algorithm comes from cuDNN's heuristics (cudnnGet*_v7) or, with
// CudnnBenchmark, from timing (cudnnFind*Ex, one host sync per new shape).
using ResidualEngine.Native;

namespace ResidualEngine.Backends.Cuda;

internal enum ConvDirection
{
    Forward,
    BackwardData,
    BackwardFilter,
}

internal readonly record struct ConvKey(ConvDirection Direction, DType DType, MemoryFormat Format, int N, int C, int H, int W, int K, int R, int S,
    int P, int Q, Conv2dParams Params, bool Tf32, bool Deterministic, bool Benchmark)
{
    /// <summary>Tensor-core algorithms are acceptable: always for 16-bit data, for F32 data only with TF32 allowed.</summary>
    public bool TensorOps => Tf32 || DType.Is16Bit();
}

internal sealed class ConvPlan(nint x, nint w, nint y, nint conv)
{
    public nint X { get; } = x;     // (N, C, H, W), stored NCHW or NHWC
    public nint W { get; } = w;     // (K, C/groups, R, S), stored KCRS or KRSC
    public nint Y { get; } = y;     // (N, K, P, Q), stored NCHW or NHWC
    public nint Conv { get; } = conv;
    public int Algo { get; set; }
    public long WorkspaceBytes { get; set; }
    public cudnnMathType_t MathType { get; set; }
}

public sealed unsafe partial class CudaBackend
{
    private readonly Dictionary<ConvKey, ConvPlan> _convPlans = new();
    private readonly Dictionary<(DType, MemoryFormat, int, int, int, int), (nint X, nint Bn)> _bnDescs = new();

    /// <summary>Number of cached convolution plans (for tests and diagnostics).</summary>
    public int ConvPlanCount
    {
        get { lock (_libLock) return _convPlans.Count; }
    }

    // cuDNN's data types for our element types (cudnnDataType_t in cudnn_graph.h / cudnn_ops_infer.h).
    internal static cudnnDataType_t CudnnType(DType t, string op) => t switch
    {
        DType.F32 => cudnnDataType_t.CUDNN_DATA_FLOAT,
        DType.F64 => cudnnDataType_t.CUDNN_DATA_DOUBLE,
        DType.F16 => cudnnDataType_t.CUDNN_DATA_HALF,
        DType.BF16 => cudnnDataType_t.CUDNN_DATA_BFLOAT16,
        _ => throw new NotSupportedException($"{op} on CUDA supports F32, F64, BF16 and F16, not {t}"),
    };

    /// <summary>cudnnSetTensor4dDescriptor's format: NCHW, or NHWC for channels-last (the dimensions are
    /// still given as n, c, h, w; for a filter, NHWC means K R S C order). cuDNN API reference,
    /// cudnnTensorFormat_t and cudnnSetTensor4dDescriptor / cudnnSetFilter4dDescriptor.</summary>
    internal static cudnnTensorFormat_t CudnnFormat(MemoryFormat f) =>
        f == MemoryFormat.ChannelsLast ? cudnnTensorFormat_t.CUDNN_TENSOR_NHWC : cudnnTensorFormat_t.CUDNN_TENSOR_NCHW;

    /// <summary>
    /// The convolution's compute type: the data type for F32 and F64 (FLOAT_CONFIG, DOUBLE_CONFIG), FLOAT for
    /// HALF and BFLOAT16 data (PSEUDO_HALF_CONFIG, PSEUDO_BFLOAT16_CONFIG: 16-bit storage, F32 accumulation),
    /// as the supported configurations of cudnnConvolutionForward/BackwardData/BackwardFilter list them
    /// (cuDNN API reference, cudnn_cnn library). TRUE_HALF_CONFIG (HALF compute) is never used.
    /// </summary>
    internal static cudnnDataType_t ConvComputeType(DType t, string op) =>
        t.Is16Bit() ? cudnnDataType_t.CUDNN_DATA_FLOAT : CudnnType(t, op);

    /// <summary>The plan for a convolution; x, w, y are the tensors of this call (used only when timing algorithms).</summary>
    private ConvPlan ConvPlanFor(ConvKey key, nint x, nint w, nint y)
    {
        if (_convPlans.TryGetValue(key, out var plan)) return plan;
        var dt = CudnnType(key.DType, "Conv2d");
        var fmt = CudnnFormat(key.Format);
        var p = key.Params;
        Cudnn.ThrowIfFailed(Cudnn.cudnnCreateTensorDescriptor(out var xd));
        Cudnn.ThrowIfFailed(Cudnn.cudnnSetTensor4dDescriptor(xd, fmt, dt, key.N, key.C, key.H, key.W));
        Cudnn.ThrowIfFailed(Cudnn.cudnnCreateFilterDescriptor(out var wd));
        Cudnn.ThrowIfFailed(Cudnn.cudnnSetFilter4dDescriptor(wd, dt, fmt, key.K, key.C / p.Groups, key.R, key.S));
        Cudnn.ThrowIfFailed(Cudnn.cudnnCreateTensorDescriptor(out var yd));
        Cudnn.ThrowIfFailed(Cudnn.cudnnSetTensor4dDescriptor(yd, fmt, dt, key.N, key.K, key.P, key.Q));
        Cudnn.ThrowIfFailed(Cudnn.cudnnCreateConvolutionDescriptor(out var cd));
        // PyTorch's conv2d is a cross-correlation. Compute type: see ConvComputeType (F32 for 16-bit data).
        Cudnn.ThrowIfFailed(Cudnn.cudnnSetConvolution2dDescriptor(cd, p.PadH, p.PadW, p.StrideH, p.StrideW, p.DilationH, p.DilationW,
            cudnnConvolutionMode_t.CUDNN_CROSS_CORRELATION, ConvComputeType(key.DType, "Conv2d")));
        Cudnn.ThrowIfFailed(Cudnn.cudnnSetConvolutionGroupCount(cd, p.Groups));
        // As PyTorch's Conv_v7.cpp: HALF data gets TENSOR_OP_MATH; FLOAT data FMA_MATH (no tensor-op, so no TF32)
        // unless TF32 is allowed; otherwise DEFAULT_MATH, which lets cuDNN pick tensor cores (TF32, BF16).
        var math = key.DType == DType.F16 ? cudnnMathType_t.CUDNN_TENSOR_OP_MATH
            : key.DType == DType.BF16 || key.Tf32 ? cudnnMathType_t.CUDNN_DEFAULT_MATH
            : cudnnMathType_t.CUDNN_FMA_MATH;
        Cudnn.ThrowIfFailed(Cudnn.cudnnSetConvolutionMathType(cd, math));
        plan = new ConvPlan(xd, wd, yd, cd) { MathType = math };
        ChooseAlgorithm(key, plan, x, w, y);
        _convPlans[key] = plan;
        return plan;
    }

    private void ChooseAlgorithm(ConvKey key, ConvPlan plan, nint x, nint w, nint y)
    {
        const int Requested = 8;
        var perf = stackalloc cudnnConvolutionAlgoPerf_t[Requested];
        int returned = 0;
        var h = Dnn();
        bool timed = false;
        if (key.Benchmark)
        {
            long wsBytes = Math.Min(MaxConvWorkspaceBytes, 256L << 20);
            try
            {
                using var ws = TakeScratch(wsBytes);
                var status = key.Direction switch
                {
                    ConvDirection.Forward => Cudnn.cudnnFindConvolutionForwardAlgorithmEx(h, plan.X, x, plan.W, w, plan.Conv, plan.Y, y,
                        Requested, out returned, perf, ws.Pointer, (nuint)wsBytes),
                    ConvDirection.BackwardData => Cudnn.cudnnFindConvolutionBackwardDataAlgorithmEx(h, plan.W, w, plan.Y, y, plan.Conv,
                        plan.X, x, Requested, out returned, perf, ws.Pointer, (nuint)wsBytes),
                    _ => Cudnn.cudnnFindConvolutionBackwardFilterAlgorithmEx(h, plan.X, x, plan.Y, y, plan.Conv, plan.W, w,
                        Requested, out returned, perf, ws.Pointer, (nuint)wsBytes),
                };
                Cudnn.ThrowIfFailed(status, $"cudnnFindConvolution{key.Direction}AlgorithmEx");
                timed = true;
            }
            catch (CudaOutOfMemoryException) { } // no room to time: fall back to the heuristics
        }
        if (!timed)
        {
            var status = key.Direction switch
            {
                ConvDirection.Forward => Cudnn.cudnnGetConvolutionForwardAlgorithm_v7(h, plan.X, plan.W, plan.Conv, plan.Y, Requested, out returned, perf),
                ConvDirection.BackwardData => Cudnn.cudnnGetConvolutionBackwardDataAlgorithm_v7(h, plan.W, plan.Y, plan.Conv, plan.X, Requested, out returned, perf),
                _ => Cudnn.cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, plan.X, plan.Y, plan.Conv, plan.W, Requested, out returned, perf),
            };
            Cudnn.ThrowIfFailed(status, $"cudnnGetConvolution{key.Direction}Algorithm_v7");
        }

        // First acceptable result: succeeded, no tensor-op math unless allowed, deterministic if asked, workspace within bounds.
        // Fallbacks (IMPLICIT_GEMM forward, ALGO_1 backward) are deterministic and need little workspace.
        int algo = key.Direction == ConvDirection.Forward ? 0 : 1;
        var chosenMath = plan.MathType;
        for (int i = 0; i < returned; i++)
        {
            var r = perf[i];
            if (r.status != cudnnStatus_t.CUDNN_STATUS_SUCCESS) continue;
            if (!key.TensorOps && r.mathType is cudnnMathType_t.CUDNN_TENSOR_OP_MATH or cudnnMathType_t.CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;
            if (key.Deterministic && r.determinism != cudnnDeterminism_t.CUDNN_DETERMINISTIC) continue;
            if ((long)r.memory > MaxConvWorkspaceBytes) continue;
            algo = r.algo;
            if (key.TensorOps) chosenMath = r.mathType;
            break;
        }
        if (chosenMath != plan.MathType)
        {
            Cudnn.ThrowIfFailed(Cudnn.cudnnSetConvolutionMathType(plan.Conv, chosenMath));
            plan.MathType = chosenMath;
        }
        nuint size;
        var st = key.Direction switch
        {
            ConvDirection.Forward => Cudnn.cudnnGetConvolutionForwardWorkspaceSize(h, plan.X, plan.W, plan.Conv, plan.Y, algo, out size),
            ConvDirection.BackwardData => Cudnn.cudnnGetConvolutionBackwardDataWorkspaceSize(h, plan.W, plan.Y, plan.Conv, plan.X, algo, out size),
            _ => Cudnn.cudnnGetConvolutionBackwardFilterWorkspaceSize(h, plan.X, plan.Y, plan.Conv, plan.W, algo, out size),
        };
        Cudnn.ThrowIfFailed(st, $"cudnnGetConvolution{key.Direction}WorkspaceSize(algo {algo})");
        plan.Algo = algo;
        plan.WorkspaceBytes = (long)size;
    }

    /// <summary>Tensor and derived per-channel BN descriptors for x viewed as (N, C, H, W), NCHW or NHWC. cuDNN derives
    /// the parameter descriptor's type from x's: FLOAT for HALF and BFLOAT16 x (the rule of bnScaleBiasMeanVarDesc:
    /// "type = (typeOf(x) == double) ? double : float", cudnn_ops header and API reference).</summary>
    private (nint X, nint Bn) BnDescriptors(DType t, MemoryFormat f, int n, int c, int h, int w)
    {
        var key = (t, f, n, c, h, w);
        if (_bnDescs.TryGetValue(key, out var d)) return d;
        var dt = CudnnType(t, "BatchNorm");
        Cudnn.ThrowIfFailed(Cudnn.cudnnCreateTensorDescriptor(out var xd));
        Cudnn.ThrowIfFailed(Cudnn.cudnnSetTensor4dDescriptor(xd, CudnnFormat(f), dt, n, c, h, w));
        Cudnn.ThrowIfFailed(Cudnn.cudnnCreateTensorDescriptor(out var bd));
        Cudnn.ThrowIfFailed(Cudnn.cudnnDeriveBNTensorDescriptor(bd, xd, cudnnBatchNormMode_t.CUDNN_BATCHNORM_SPATIAL));
        d = (xd, bd);
        _bnDescs[key] = d;
        return d;
    }
}
