// Batch normalisation over (N, H, W) per channel, optionally followed by the residual sum and a
// ReLU in the same op: y = act(bn(x) + residual), so a ResNet block's "bn -> relu" and
// "bn -> + shortcut -> relu" cost one pass over the activation each way. Gradient rule, with
// xhat = (x - mean) * invstd, M = N*H*W and g = dY masked by y > 0 when act is ReLU (else dY):
// dResidual = g, dBeta = sum g, dGamma = sum g * xhat, and
//   training (batch statistics): dX = gamma * invstd * (g - dBeta / M - xhat * dGamma / M);
//   evaluation (running statistics are constants): dX = g * gamma * invstd.
// Running statistics are buffers, updated in place in training and never differentiated.
// x may be NCHW or channels-last and of any float type; for BF16/F16 x the backends take F32
// parameters and statistics (as cuDNN does). 16-bit parameters (a model converted wholesale with
// ToDType) are widened here with differentiable casts, and the updated statistics rounded back.
// Evaluation-mode backward is composed from existing backend calls (no extra IBackend method):
// BatchNormBackward with the running mean and invstd as the "saved" statistics yields exactly
// dGamma and dBeta (its dX is then overwritten), and BatchNormForwardInference with beta = 0 and
// mean = 0 maps dY to dY * gamma * invstd; the activation is then the separate pointwise op.
using ResidualEngine.Autograd;
using ResidualEngine.Pointwise;

namespace ResidualEngine;

public static partial class Ops
{
    /// <summary>x (N, C, H, W); gamma, beta, runningMean, runningVar (C). In training, normalises with batch
    /// statistics and updates the running ones in place (momentum 0.1, unbiased variance); otherwise uses the running ones.
    /// Then adds <paramref name="residual"/> (x's shape) when given and applies ReLU when <paramref name="relu"/>.</summary>
    public static Tensor BatchNorm2d(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        bool training, double momentum = 0.1, double eps = 1e-5, Tensor? residual = null, bool relu = false)
    {
        const string op = "BatchNorm2d";
        int c = CheckBatchNormArguments(op, x, gamma, beta, runningMean, runningVar, momentum, eps);
        Check.SameDType(op, gamma, "gamma", beta, "beta");
        Check.SameDType(op, gamma, "gamma", runningMean, "runningMean");
        Check.SameDType(op, gamma, "gamma", runningVar, "runningVar");
        // Parameters share x's dtype, or are F32 for half-precision activations (as cuDNN wants).
        if (gamma.DType != x.DType && !(gamma.DType == DType.F32 && x.DType is DType.F16 or DType.BF16))
            throw new ArgumentException($"{op}: gamma is {gamma.DType} but x is {x.DType}; parameters must match x (or be F32 for F16/BF16 x)");
        if (x.DType.Is16Bit() && gamma.DType == x.DType)
            return WithF32Parameters(x, gamma, beta, runningMean, runningVar, training, momentum, eps, residual, relu);
        if (residual is not null) Check.Compatible(op, x, "x", residual, "residual"); // shape, dtype, device and memory format

        var be = x.Backend;
        if (training)
        {
            if ((long)x.Shape[0] * x.Shape[2] * x.Shape[3] <= 1)
                throw new ArgumentException($"{op}: expected more than 1 value per channel when training, got input size {x.Shape}");
            bool record = GradMode.ShouldRecord([x, gamma, beta, residual]);
            var y = NewLike(x);
            var mean = NewLike(gamma, new Shape(c));
            var invStd = NewLike(gamma, new Shape(c));
            be.BatchNormActForwardTraining(y, x, gamma, beta, runningMean, runningVar, mean, invStd, momentum, eps, residual, relu);
            if (record) y.GradFn = new BatchNormTrainNode(x, gamma, beta, residual, y, mean, invStd, relu);
            else { mean.Dispose(); invStd.Dispose(); }
            return y;
        }
        if (!GradMode.ShouldRecord([x, gamma, beta, residual]))
        {
            var y = NewLike(x);
            be.BatchNormForwardInference(y, x, gamma, beta, runningMean, runningVar, eps);
            if (residual is not null)
            {
                if (relu) be.Map<Pointwise.AddRelu>(y, y, residual, Broadcast.Same(y), 0, 0);
                else be.Map<Pointwise.Add>(y, y, residual, Broadcast.Same(y), 0, 0);
            }
            else if (relu) be.Map<Pointwise.Relu>(y, y, 0, 0);
            return y;
        }
        var z = NewLike(x);
        be.BatchNormForwardInference(z, x, gamma, beta, runningMean, runningVar, eps);
        z.GradFn = new BatchNormEvalNode(x, gamma, beta, runningMean, runningVar, eps);
        if (residual is not null) return z.Then(t => relu ? AddRelu(t, residual) : Add(t, residual));
        return relu ? z.Then(Relu) : z;
    }

    /// <summary>16-bit x with 16-bit parameters: the op on F32 copies of the parameters (cast differentiably, so gamma and
    /// beta still get their gradients) and statistics (copied back, rounded, after a training step).</summary>
    private static Tensor WithF32Parameters(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        bool training, double momentum, double eps, Tensor? residual, bool relu)
    {
        using var g = Cast(gamma, DType.F32);
        using var b = Cast(beta, DType.F32);
        using var rm = runningMean.To(DType.F32);
        using var rv = runningVar.To(DType.F32);
        var y = BatchNorm2d(x, g, b, rm, rv, training, momentum, eps, residual, relu);
        if (training)
        {
            runningMean.Backend.Cast(runningMean, rm);
            runningVar.Backend.Cast(runningVar, rv);
        }
        return y;
    }

    /// <summary>What BatchNorm2d and SyncBatchNorm2d both require: x (N, C, H, W) of a float type; gamma, beta and the
    /// running statistics float, of shape (C), on x's device; eps &gt; 0 and momentum in [0, 1]. Returns C.</summary>
    private static int CheckBatchNormArguments(string op, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        double momentum, double eps)
    {
        Check.Float(op, x, "x");
        Check.Rank(op, x, "x", 4);
        int c = x.Shape[1];
        CheckPerChannel(op, x, c, gamma, "gamma");
        CheckPerChannel(op, x, c, beta, "beta");
        CheckPerChannel(op, x, c, runningMean, "runningMean");
        CheckPerChannel(op, x, c, runningVar, "runningVar");
        if (!(eps > 0)) throw new ArgumentException($"{op}: eps must be positive, got {eps}");
        if (!(momentum >= 0 && momentum <= 1)) throw new ArgumentException($"{op}: momentum must be in [0, 1], got {momentum}");
        return c;
    }

    private static void CheckPerChannel(string op, Tensor x, int c, Tensor t, string name)
    {
        Check.NotDisposed(op, t, name);
        Check.SameDevice(op, x, "x", t, name);
        if (!t.DType.IsFloat()) throw new ArgumentException($"{op}: {name} must be a floating-point tensor, got {t.DType}");
        if (t.Rank != 1 || t.Shape[0] != c)
            throw new ArgumentException($"{op}: {name} must have shape ({c},) for {c} channels, got {t.Shape}");
    }

    private sealed class BatchNormTrainNode : Node
    {
        private readonly Tensor _x, _gamma, _mean, _invStd; // x (N, C, H, W); gamma, mean, invStd (C)
        private readonly Tensor? _y; // the output, for the fused ReLU's mask
        private readonly bool _relu;

        public BatchNormTrainNode(Tensor x, Tensor gamma, Tensor beta, Tensor? residual, Tensor y, Tensor mean, Tensor invStd, bool relu)
            : base(x, gamma, beta, residual)
        {
            _x = Save(x);
            _gamma = Save(gamma);
            _mean = Own(mean);
            _invStd = Own(invStd);
            _relu = relu;
            if (relu) _y = Save(y);
        }

        public override string Name => _relu ? "BatchNorm2d+ReLU" : "BatchNorm2d";

        protected internal override Tensor?[] Backward(Tensor dY)
        {
            // On the CPU, dX is written over dY when nothing else holds dY's buffer (each element of dX is
            // computed from the same element of dY after both sums have read it): one activation-sized buffer less.
            bool inPlace = NeedsGrad(0) && dY.Device.Type == DeviceType.Cpu && dY.Storage.IsExclusive && dY.Shape == _x.Shape && dY.Format == _x.Format;
            var dx = inPlace ? dY.Detach() : NewLike(_x);
            var dGamma = NewLike(_gamma);
            var dBeta = NewLike(_gamma);
            var dRes = NeedsGrad(3) ? NewLike(_x) : null;
            dY.Backend.BatchNormActBackward(dx, dGamma, dBeta, dRes, dY, _y ?? _x, _x, _gamma, _mean, _invStd, _relu);
            return [Keep(dx, 0), Keep(dGamma, 1), Keep(dBeta, 2), dRes];
        }

        private Tensor? Keep(Tensor t, int i)
        {
            if (NeedsGrad(i)) return t;
            t.Dispose();
            return null;
        }
    }

    private sealed class BatchNormEvalNode : Node
    {
        // Copies, not aliases: the running statistics are updated in place by later training steps.
        private readonly Tensor _x, _gamma, _mean, _var; // x (N, C, H, W); gamma, mean, var (C)
        private readonly double _eps;

        public BatchNormEvalNode(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, double eps) : base(x, gamma, beta)
        {
            _x = Save(x);
            _gamma = Save(gamma);
            _mean = Own(runningMean.To(runningMean.DType));
            _var = Own(runningVar.To(runningVar.DType));
            _eps = eps;
        }

        public override string Name => "BatchNorm2d(eval)";

        protected internal override Tensor?[] Backward(Tensor dY)
        {
            var be = dY.Backend;
            int c = _gamma.Shape[0];
            var pdt = _gamma.DType;
            using var ones = Tensor.Full(new Shape(c), 1, pdt, dY.Device);
            using var zeros = Tensor.Zeros(new Shape(c), pdt, dY.Device);
            // invstd (C) = 1 / sqrt(var + eps), as the inference transform of ones with gamma 1, beta 0, mean 0.
            using var invStd = Tensor.Empty(new Shape(c), pdt, dY.Device);
            using (var ones4 = ones.View(new Shape(1, c, 1, 1)))
            using (var inv4 = invStd.View(new Shape(1, c, 1, 1)))
                be.BatchNormForwardInference(inv4, ones4, ones, zeros, zeros, _var, _eps);

            var dx = NewLike(_x);
            var dGamma = NewLike(_gamma);
            var dBeta = NewLike(_gamma);
            // dGamma = sum dY * (x - mean) * invstd, dBeta = sum dY; the dX it writes is replaced below.
            be.BatchNormBackward(dx, dGamma, dBeta, dY, _x, _gamma, _mean, invStd);
            // dX = dY * gamma * invstd.
            be.BatchNormForwardInference(dx, dY, _gamma, zeros, zeros, _var, _eps);
            if (!NeedsGrad(1)) { dGamma.Dispose(); dGamma = null; }
            if (!NeedsGrad(2)) { dBeta.Dispose(); dBeta = null; }
            if (!NeedsGrad(0)) { dx.Dispose(); dx = null; }
            return [dx, dGamma, dBeta];
        }
    }
}
