// Convolution on CUDA through cuDNN: forward, backward data and backward filter as cross-correlation
// with groups and dilation, per-shape plans (CudnnPlans.cs), NCHW or NHWC descriptors, F32/F64 data
// with compute in the same type (TF32 as AllowTf32Convolutions says), BF16/F16 data with F32
// compute (tensor cores allowed); host scaling factors are float except for double data. The bias add
// and the bias gradient are our own kernels (reduce.cu): deterministic, and no extra descriptor.
// Gradient rules: dX = conv_transpose(dY, W); dW = correlation of x with dY; dB = sum over N, P, Q of dY.
// Outputs are overwritten (beta = 0: cuDNN does not read them, so they may hold anything).
using ResidualEngine.Native;

namespace ResidualEngine.Backends.Cuda;

public sealed unsafe partial class CudaBackend
{
    private ConvKey Key(ConvDirection dir, Tensor x, Tensor w, Tensor y, Conv2dParams p) => new(dir, x.DType, x.Format,
        x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3], w.Shape[0], w.Shape[2], w.Shape[3], y.Shape[2], y.Shape[3], p,
        AllowTf32Convolutions && x.DType == DType.F32, DeterministicAlgorithms, CudnnBenchmark);

    public void ConvForward(Tensor y, Tensor x, Tensor w, Tensor? bias, Conv2dParams p)
    {
        RequireFloat(x, "ConvForward");
        Enter();
        lock (_libLock)
        {
            var plan = ConvPlanFor(Key(ConvDirection.Forward, x, w, y, p), x.Pointer, w.Pointer, y.Pointer);
            using var ws = TakeScratch(plan.WorkspaceBytes);
            var (one, zero) = Scalars(x.DType);
            Cudnn.ThrowIfFailed(Cudnn.cudnnConvolutionForward(Dnn(), (void*)one, plan.X, x.Pointer, plan.W, w.Pointer, plan.Conv, plan.Algo,
                ws.Pointer, (nuint)plan.WorkspaceBytes, (void*)zero, plan.Y, y.Pointer));
        }
        if (bias is not null) Map<Pointwise.Add>(y, y, bias, Pointwise.Broadcast.Channels(y), 0, 0);
    }

    public void ConvBackwardData(Tensor dX, Tensor dY, Tensor w, Conv2dParams p)
    {
        RequireFloat(dX, "ConvBackwardData");
        Enter();
        lock (_libLock)
        {
            var plan = ConvPlanFor(Key(ConvDirection.BackwardData, dX, w, dY, p), dX.Pointer, w.Pointer, dY.Pointer);
            using var ws = TakeScratch(plan.WorkspaceBytes);
            var (one, zero) = Scalars(dX.DType);
            Cudnn.ThrowIfFailed(Cudnn.cudnnConvolutionBackwardData(Dnn(), (void*)one, plan.W, w.Pointer, plan.Y, dY.Pointer, plan.Conv,
                plan.Algo, ws.Pointer, (nuint)plan.WorkspaceBytes, (void*)zero, plan.X, dX.Pointer));
        }
    }

    public void ConvBackwardFilter(Tensor dW, Tensor dY, Tensor x, Conv2dParams p)
    {
        RequireFloat(dW, "ConvBackwardFilter");
        Enter();
        lock (_libLock)
        {
            var plan = ConvPlanFor(Key(ConvDirection.BackwardFilter, x, dW, dY, p), x.Pointer, dW.Pointer, dY.Pointer);
            using var ws = TakeScratch(plan.WorkspaceBytes);
            var (one, zero) = Scalars(dW.DType);
            Cudnn.ThrowIfFailed(Cudnn.cudnnConvolutionBackwardFilter(Dnn(), (void*)one, plan.X, x.Pointer, plan.Y, dY.Pointer, plan.Conv,
                plan.Algo, ws.Pointer, (nuint)plan.WorkspaceBytes, (void*)zero, plan.W, dW.Pointer));
        }
    }

    // cuDNN's host scaling factors (alpha = 1, beta = 0): double for double data, float for every other
    // type, HALF and BFLOAT16 included (cuDNN API reference, "Scaling Parameters").
    // They live in native memory for the process, so their addresses are stable.
    private static readonly nint s_scalars = AllocScalars();

    private static nint AllocScalars()
    {
        var p = (byte*)System.Runtime.InteropServices.NativeMemory.Alloc(32);
        *(float*)p = 1f;
        *(float*)(p + 4) = 0f;
        *(double*)(p + 8) = 1.0;
        *(double*)(p + 16) = 0.0;
        return (nint)p;
    }

    internal static (nint One, nint Zero) Scalars(DType t) => t == DType.F64
        ? (s_scalars + 8, s_scalars + 16)
        : (s_scalars, s_scalars + 4);
}
