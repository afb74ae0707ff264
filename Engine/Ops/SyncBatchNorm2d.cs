// Batch normalisation whose statistics are those of every rank's batch together, as
// torch.nn.SyncBatchNorm (training mode; evaluation uses the running statistics as plain BN).
// Forward, with M the global count N*H*W summed over ranks:
//   1. per-channel sums of x and the local count, all-reduced: mean = sum / M;
//   2. per-channel sums of (x - mean)^2, all-reduced: var = sum / M (biased), invstd = 1/sqrt(var + eps)
//      (two passes over the global mean, so the variance is as exact as a single process's);
//   3. y = gamma (x - mean) invstd + beta, and the running statistics take mean and the unbiased
//      variance var * M / (M - 1) with the layer's momentum (identical on every rank).
// Backward: the per-channel sums of dY and dY (x - mean) are all-reduced, and
//   dX = gamma invstd (dY - sum dY / M - (x - mean) invstd^2 sum dY(x - mean) / M);
// dGamma and dBeta are this rank's own sums, as torch returns them: data-parallel training then
// averages them over ranks like every other gradient, which equals a single process over the
// union of the batches (each rank's loss is a mean over its own batch). The per-channel
// arithmetic (a few numbers per channel) runs on the host in double precision; on a GPU each of
// the three collectives therefore waits for the device.
using ResidualEngine.Autograd;
using ResidualEngine.Distributed;
using ResidualEngine.Pointwise;

namespace ResidualEngine;

public static partial class Ops
{
    /// <summary>
    /// Training-mode batch norm with statistics over the batches of every rank of <paramref name="group"/>
    /// (a collective: every rank must call it at the same point). x (N, C, H, W); gamma, beta,
    /// runningMean, runningVar (C), of x's dtype (F32 or F64). Updates the running statistics in place.
    /// </summary>
    public static Tensor SyncBatchNorm2d(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        ProcessGroup group, double momentum = 0.1, double eps = 1e-5)
    {
        const string op = "SyncBatchNorm2d";
        ArgumentNullException.ThrowIfNull(group);
        int c = CheckBatchNormArguments(op, x, gamma, beta, runningMean, runningVar, momentum, eps);
        if (x.DType is not (DType.F32 or DType.F64) || gamma.DType != x.DType || beta.DType != x.DType || runningMean.DType != x.DType || runningVar.DType != x.DType)
            throw new ArgumentException($"{op}: x and the parameters must all be F32 or all F64 (got x {x.DType}, gamma {gamma.DType}); 16-bit activations are not supported with synchronised statistics");

        var be = x.Backend;
        var bc = Broadcast.Channels(x);
        long local = x.Numel / c;
        Tensor mean, invStd;
        double count;
        bool record = GradMode.ShouldRecord([x, gamma, beta]);
        using (GradMode.NoGrad())
        {
            // 1. global mean
            var sums = new double[c + 1];
            using (var s1 = NewLike(gamma)) { be.SumTo(s1, x, bc); s1.ToDoubles().CopyTo(sums, 0); }
            sums[c] = local;
            group.AllReduce(sums.AsSpan(), ReduceOp.Sum);
            count = sums[c];
            if (count <= 1) throw new ArgumentException($"{op}: expected more than 1 value per channel when training, got {count} over all ranks");
            var meanHost = new double[c];
            for (int i = 0; i < c; i++) meanHost[i] = sums[i] / count;
            mean = Tensor.FromDoubles(meanHost, new Shape(c), x.DType, x.Device);

            // 2. global variance around the global mean
            var m2 = new double[c];
            using (var d = NewLike(x))
            using (var s2 = NewLike(gamma))
            {
                be.Map<Sub>(d, x, mean, bc, 0, 0);
                be.Map<Mul>(d, d, d, Broadcast.Same(d), 0, 0);
                be.SumTo(s2, d, bc);
                s2.ToDoubles().CopyTo(m2, 0);
            }
            group.AllReduce(m2.AsSpan(), ReduceOp.Sum);
            var varHost = new double[c];
            var invHost = new double[c];
            var unbiased = new double[c];
            for (int i = 0; i < c; i++)
            {
                varHost[i] = m2[i] / count;
                invHost[i] = 1 / Math.Sqrt(varHost[i] + eps);
                unbiased[i] = m2[i] / (count - 1);
            }
            invStd = Tensor.FromDoubles(invHost, new Shape(c), x.DType, x.Device);

            // 3. normalise with the global statistics; running statistics as plain BN updates them
            var y = NewLike(x);
            using (var v = Tensor.FromDoubles(varHost, new Shape(c), x.DType, x.Device))
                be.BatchNormForwardInference(y, x, gamma, beta, mean, v, eps);
            using (var u = Tensor.FromDoubles(unbiased, new Shape(c), x.DType, x.Device))
            {
                be.Map<Axpby>(runningMean, runningMean, mean, Broadcast.Same(runningMean), 1 - momentum, momentum);
                be.Map<Axpby>(runningVar, runningVar, u, Broadcast.Same(runningVar), 1 - momentum, momentum);
            }
            if (record)
            {
                y.GradFn = new SyncBatchNormNode(x, gamma, beta, TensorScope.Detach(mean), TensorScope.Detach(invStd), count, group);
                return y;
            }
            mean.Dispose();
            invStd.Dispose();
            return y;
        }
    }

    private sealed class SyncBatchNormNode : Node
    {
        private readonly Tensor _x, _gamma, _mean, _invStd; // x (N, C, H, W); gamma, mean, invStd (C)
        private readonly double _count;
        private readonly ProcessGroup _group;

        public SyncBatchNormNode(Tensor x, Tensor gamma, Tensor beta, Tensor mean, Tensor invStd, double count, ProcessGroup group) : base(x, gamma, beta)
        {
            _x = Save(x);
            _gamma = Save(gamma);
            _mean = Own(mean);
            _invStd = Own(invStd);
            _count = count;
            _group = group;
        }

        public override string Name => "SyncBatchNorm2d";

        protected internal override Tensor?[] Backward(Tensor dY)
        {
            var be = dY.Backend;
            var bc = Broadcast.Channels(_x);
            int c = _gamma.Shape[0];
            var xmu = NewLike(_x);
            var sums = new double[2 * c];
            try
            {
                be.Map<Sub>(xmu, _x, _mean, bc, 0, 0);
                using (var sdy = NewLike(_gamma)) { be.SumTo(sdy, dY, bc); sdy.ToDoubles().CopyTo(sums, 0); }
                using (var prod = NewLike(_x))
                using (var sdx = NewLike(_gamma))
                {
                    be.Map<Mul>(prod, dY, xmu, Broadcast.Same(prod), 0, 0);
                    be.SumTo(sdx, prod, bc);
                    sdx.ToDoubles().CopyTo(sums, c);
                }
                var gamma = _gamma.ToDoubles();
                var inv = _invStd.ToDoubles();
                var dGammaHost = new double[c];
                for (int i = 0; i < c; i++) dGammaHost[i] = sums[c + i] * inv[i];
                var dBetaHost = sums[..c];
                Tensor? dx = null;
                if (NeedsGrad(0))
                {
                    // Every rank reaches this collective: the inputs' need for a gradient is the same on all of them.
                    var global = (double[])sums.Clone();
                    _group.AllReduce(global.AsSpan(), ReduceOp.Sum);
                    var a = new double[c];
                    var b = new double[c];
                    var k = new double[c];
                    for (int i = 0; i < c; i++)
                    {
                        a[i] = gamma[i] * inv[i];
                        b[i] = -gamma[i] * inv[i] * inv[i] * inv[i] * global[c + i] / _count;
                        k[i] = -gamma[i] * inv[i] * global[i] / _count;
                    }
                    dx = NewLike(_x);
                    using var at = Tensor.FromDoubles(a, new Shape(c), _x.DType, _x.Device);
                    using var bt = Tensor.FromDoubles(b, new Shape(c), _x.DType, _x.Device);
                    using var kt = Tensor.FromDoubles(k, new Shape(c), _x.DType, _x.Device);
                    be.Map<Mul>(dx, dY, at, bc, 0, 0);        // gamma invstd dY
                    be.Map<Mul>(xmu, xmu, bt, bc, 0, 0);      // - gamma invstd^3 (x - mean) sum(dY (x - mean)) / M
                    be.Map<Add>(dx, dx, xmu, Broadcast.Same(dx), 0, 0);
                    be.Map<Add>(dx, dx, kt, bc, 0, 0);        // - gamma invstd sum(dY) / M
                }
                var dGamma = NeedsGrad(1) ? Tensor.FromDoubles(dGammaHost, _gamma.Shape, _gamma.DType, _gamma.Device) : null;
                var dBeta = NeedsGrad(2) ? Tensor.FromDoubles(dBetaHost, _gamma.Shape, _gamma.DType, _gamma.Device) : null;
                return [dx, dGamma, dBeta];
            }
            finally
            {
                xmu.Dispose();
            }
        }
    }
}
