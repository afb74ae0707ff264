// `residual bench --profile`: a backend decorator that times every backend call (the ops'
// arithmetic) with a Stopwatch and files it under the current phase of the step (forward,
// backward, optimizer) set by the bench loop. Installed through BackendRegistry.Interceptor
// only while profiling, so an unprofiled run pays nothing. On a device with an asynchronous
// queue (CUDA) every call is bracketed by Synchronize, which serialises the step: the split
// between ops is right, the total is larger than an unprofiled step.
// When IBackend gains a member, add a forwarding line here (the compiler will say which).
using System.Diagnostics;
using ResidualEngine.Backends;
using ResidualEngine.Pointwise;

namespace ResidualEngine.Tools.Bench;

internal sealed class ProfilingBackend(IBackend inner, OpProfiler profiler) : IBackend
{
    private readonly bool _sync = inner.Device.Type != DeviceType.Cpu;

    public IBackend Inner => inner;
    public Device Device => inner.Device;

    private long Begin()
    {
        if (_sync) inner.Synchronize();
        return Stopwatch.GetTimestamp();
    }

    private long End(string op, long t0)
    {
        if (_sync) inner.Synchronize();
        long ticks = Stopwatch.GetTimestamp() - t0;
        profiler.Record(op, ticks);
        return ticks;
    }

    public Storage Allocate(long bytes) { var t = Begin(); var s = inner.Allocate(bytes); End(nameof(Allocate), t); return s; }
    public void CopyFromHost(Tensor dst, ReadOnlySpan<byte> src) { var t = Begin(); inner.CopyFromHost(dst, src); End(nameof(CopyFromHost), t); }
    public void CopyToHost(Tensor src, Span<byte> dst) { var t = Begin(); inner.CopyToHost(src, dst); End(nameof(CopyToHost), t); }
    public void Copy(Tensor dst, Tensor src) { var t = Begin(); inner.Copy(dst, src); End(nameof(Copy), t); }
    public void Cast(Tensor dst, Tensor src) { var t = Begin(); inner.Cast(dst, src); End(nameof(Cast), t); }
    public void Fill(Tensor dst, double value) { var t = Begin(); inner.Fill(dst, value); End(nameof(Fill), t); }
    public void Synchronize() => inner.Synchronize();
    // The pointwise family is filed under each op's struct name (Relu, AddRelu, ReluBackward, ...).
    public void Map<TOp>(Tensor y, Tensor x, double alpha, double beta) where TOp : struct, IUnaryOp { var t = Begin(); inner.Map<TOp>(y, x, alpha, beta); End(typeof(TOp).Name, t); }
    public void Map<TOp>(Tensor y, Tensor a, Tensor b, Broadcast bc, double alpha, double beta) where TOp : struct, IBinaryOp { var t = Begin(); inner.Map<TOp>(y, a, b, bc, alpha, beta); End(typeof(TOp).Name, t); }
    public void Map<TOp>(Tensor y, Tensor a, Tensor b, Tensor c, double alpha, double beta) where TOp : struct, ITernaryOp { var t = Begin(); inner.Map<TOp>(y, a, b, c, alpha, beta); End(typeof(TOp).Name, t); }
    public void SumTo(Tensor y, Tensor x, Broadcast bc) { var t = Begin(); inner.SumTo(y, x, bc); End(nameof(SumTo), t); }


    public void ConvForward(Tensor y, Tensor x, Tensor w, Tensor? bias, Conv2dParams p) { var t = Begin(); inner.ConvForward(y, x, w, bias, p); var e = End(nameof(ConvForward), t); profiler.Detail(nameof(ConvForward), x, w, p, e); }
    public void ConvBackwardData(Tensor dX, Tensor dY, Tensor w, Conv2dParams p) { var t = Begin(); inner.ConvBackwardData(dX, dY, w, p); var e = End(nameof(ConvBackwardData), t); profiler.Detail(nameof(ConvBackwardData), dX, w, p, e); }
    public void ConvBackwardFilter(Tensor dW, Tensor dY, Tensor x, Conv2dParams p) { var t = Begin(); inner.ConvBackwardFilter(dW, dY, x, p); var e = End(nameof(ConvBackwardFilter), t); profiler.Detail(nameof(ConvBackwardFilter), x, dW, p, e); }

    public void ConvForwardFused(Tensor y, Tensor x, Tensor w, Tensor? bias, Tensor? residual, bool relu, Conv2dParams p, PreparedConvWeights? prepared)
    { var t = Begin(); inner.ConvForwardFused(y, x, w, bias, residual, relu, p, prepared); var e = End(nameof(ConvForwardFused), t); profiler.Detail(nameof(ConvForwardFused), x, w, p, e); }
    public PreparedConvWeights? PrepareConvWeights(Tensor w, Conv2dParams p) { var t = Begin(); var r = inner.PrepareConvWeights(w, p); End(nameof(PrepareConvWeights), t); return r; }

    public void BatchNormActForwardTraining(Tensor y, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        Tensor saveMean, Tensor saveInvStd, double momentum, double eps, Tensor? residual, bool relu)
    { var t = Begin(); inner.BatchNormActForwardTraining(y, x, gamma, beta, runningMean, runningVar, saveMean, saveInvStd, momentum, eps, residual, relu); End(relu ? (residual is null ? "BatchNormReluForwardTraining" : "BatchNormAddReluForwardTraining") : nameof(BatchNormForwardTraining), t); }
    public void BatchNormActBackward(Tensor dX, Tensor dGamma, Tensor dBeta, Tensor? dResidual, Tensor dY, Tensor y, Tensor x, Tensor gamma, Tensor saveMean, Tensor saveInvStd, bool relu)
    { var t = Begin(); inner.BatchNormActBackward(dX, dGamma, dBeta, dResidual, dY, y, x, gamma, saveMean, saveInvStd, relu); End(relu ? (dResidual is null ? "BatchNormReluBackward" : "BatchNormAddReluBackward") : nameof(BatchNormBackward), t); }

    public void BatchNormForwardTraining(Tensor y, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        Tensor saveMean, Tensor saveInvStd, double momentum, double eps)
    { var t = Begin(); inner.BatchNormForwardTraining(y, x, gamma, beta, runningMean, runningVar, saveMean, saveInvStd, momentum, eps); End(nameof(BatchNormForwardTraining), t); }
    public void BatchNormForwardInference(Tensor y, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, double eps)
    { var t = Begin(); inner.BatchNormForwardInference(y, x, gamma, beta, runningMean, runningVar, eps); End(nameof(BatchNormForwardInference), t); }
    public void BatchNormBackward(Tensor dX, Tensor dGamma, Tensor dBeta, Tensor dY, Tensor x, Tensor gamma, Tensor saveMean, Tensor saveInvStd)
    { var t = Begin(); inner.BatchNormBackward(dX, dGamma, dBeta, dY, x, gamma, saveMean, saveInvStd); End(nameof(BatchNormBackward), t); }

    public void MaxPoolForward(Tensor y, Tensor indices, Tensor x, Pool2dParams p) { var t = Begin(); inner.MaxPoolForward(y, indices, x, p); End(nameof(MaxPoolForward), t); }
    public void MaxPoolBackward(Tensor dX, Tensor dY, Tensor indices, Pool2dParams p) { var t = Begin(); inner.MaxPoolBackward(dX, dY, indices, p); End(nameof(MaxPoolBackward), t); }
    public void AvgPoolForward(Tensor y, Tensor x, Pool2dParams p) { var t = Begin(); inner.AvgPoolForward(y, x, p); End(nameof(AvgPoolForward), t); }
    public void AvgPoolBackward(Tensor dX, Tensor dY, Pool2dParams p) { var t = Begin(); inner.AvgPoolBackward(dX, dY, p); End(nameof(AvgPoolBackward), t); }
    public void GlobalAvgPoolForward(Tensor y, Tensor x) { var t = Begin(); inner.GlobalAvgPoolForward(y, x); End(nameof(GlobalAvgPoolForward), t); }
    public void GlobalAvgPoolBackward(Tensor dX, Tensor dY) { var t = Begin(); inner.GlobalAvgPoolBackward(dX, dY); End(nameof(GlobalAvgPoolBackward), t); }

    public void Gemm(Tensor c, Tensor a, Tensor b, bool transA, bool transB, double alpha, double beta) { var t = Begin(); inner.Gemm(c, a, b, transA, transB, alpha, beta); End(nameof(Gemm), t); }

    public void SoftmaxCrossEntropyForward(Tensor loss, Tensor probs, Tensor logits, Tensor labels, double labelSmoothing)
    { var t = Begin(); inner.SoftmaxCrossEntropyForward(loss, probs, logits, labels, labelSmoothing); End(nameof(SoftmaxCrossEntropyForward), t); }
    public void SoftmaxCrossEntropyBackward(Tensor dLogits, Tensor dLoss, Tensor probs, Tensor labels, double labelSmoothing)
    { var t = Begin(); inner.SoftmaxCrossEntropyBackward(dLogits, dLoss, probs, labels, labelSmoothing); End(nameof(SoftmaxCrossEntropyBackward), t); }

    public void ShortcutAForward(Tensor y, Tensor x, int stride, int padBefore) { var t = Begin(); inner.ShortcutAForward(y, x, stride, padBefore); End(nameof(ShortcutAForward), t); }
    public void ShortcutABackward(Tensor dX, Tensor dY, int stride, int padBefore) { var t = Begin(); inner.ShortcutABackward(dX, dY, stride, padBefore); End(nameof(ShortcutABackward), t); }

    public void SgdUpdate(Tensor param, Tensor grad, Tensor? momentumBuffer, double lr, double momentum, double dampening,
        double weightDecay, bool nesterov, bool firstStep)
    { var t = Begin(); inner.SgdUpdate(param, grad, momentumBuffer, lr, momentum, dampening, weightDecay, nesterov, firstStep); End(nameof(SgdUpdate), t); }
}
