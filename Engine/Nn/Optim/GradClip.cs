// Gradient clipping by total norm, as torch.nn.utils.clip_grad_norm_ (torch 1.13): the norm of all
// gradients taken together (here the square root of the summed squares, which is the norm of the
// per-tensor norms), coef = min(1, maxNorm / (total + 1e-6)), and every gradient multiplied by
// coef. For the 2-norm all of it runs on the gradients' device, coefficient included (ClipCoef),
// so clipping waits for nothing, as torch's; the total norm stays a one-element tensor that the
// caller reads only if it wants the number. Gradients on several devices or dtypes, and the
// infinity norm, take the host path (one read per group).
using ResidualEngine.Autograd;
using ResidualEngine.Pointwise;

namespace ResidualEngine.Nn.Optim;

public static class GradClip
{
    /// <summary>Clips the gradients of <paramref name="parameters"/> in place; returns the total norm before clipping
    /// (0 when no parameter has a gradient), which waits for the device. <paramref name="normType"/>: 2, or +infinity.</summary>
    public static double ClipGradNorm(IEnumerable<Tensor> parameters, double maxNorm, double normType = 2)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Check(maxNorm, normType);
        if (double.IsPositiveInfinity(normType)) return ClipOnHost(parameters.Where(p => p.Grad is not null).ToList(), maxNorm, normType);
        using var sumSq = ClipGradNormDeferred(parameters, maxNorm);
        return sumSq is null ? 0 : Math.Sqrt(sumSq.Item());
    }

    /// <summary>
    /// Clips the gradients (2-norm) without waiting for the device. Returns the sum of the squares of all
    /// gradients before clipping, a one-element tensor the caller owns (the total norm is its square root),
    /// or null when no parameter has a gradient.
    /// </summary>
    public static Tensor? ClipGradNormDeferred(IEnumerable<Tensor> parameters, double maxNorm)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Check(maxNorm, 2);
        var withGrad = parameters.Where(p => p.Grad is not null).ToList();
        if (withGrad.Count == 0) return null;
        if (withGrad.Select(p => (p.Grad!.Device, p.Grad!.DType)).Distinct().Count() > 1)
        {
            double total = ClipOnHost(withGrad, maxNorm, 2);
            return TensorScope.Detach(Tensor.Scalar(total * total, DType.F64));
        }
        using var noGrad = GradMode.NoGrad();
        using var scope = TensorScope.Begin();
        Tensor? acc = null;
        foreach (var p in withGrad)
        {
            var s = Ops.Sum(Ops.Mul(p.Grad!, p.Grad!));
            acc = acc is null ? s : Ops.Add(acc, s);
        }
        var coef = Ops.Map<ClipCoef>(acc!, maxNorm, 1e-6);
        foreach (var p in withGrad) p.Grad!.Backend.Map<Mul>(p.Grad!, p.Grad!, coef, Broadcast.All(p.Grad!), 0, 0);
        return TensorScope.Detach(acc!);
    }

    private static void Check(double maxNorm, double normType)
    {
        if (!(maxNorm > 0) || double.IsInfinity(maxNorm)) throw new ArgumentException($"ClipGradNorm: maxNorm must be positive and finite, got {maxNorm}");
        if (normType != 2 && !double.IsPositiveInfinity(normType)) throw new ArgumentException($"ClipGradNorm: norm type must be 2 or infinity, got {normType}");
    }

    private static double ClipOnHost(List<Tensor> withGrad, double maxNorm, double normType)
    {
        if (withGrad.Count == 0) return 0;
        double total;
        using (GradMode.NoGrad())
        using (TensorScope.Begin())
        {
            if (double.IsPositiveInfinity(normType))
                total = withGrad.Max(p => p.Grad!.ToDoubles().Select(Math.Abs).DefaultIfEmpty(0).Max());
            else
            {
                double sumSq = 0;
                foreach (var g in withGrad.GroupBy(p => (p.Grad!.Device, p.Grad!.DType)))
                {
                    Tensor? acc = null;
                    foreach (var p in g)
                    {
                        var s = Ops.Sum(Ops.Mul(p.Grad!, p.Grad!));
                        acc = acc is null ? s : Ops.Add(acc, s);
                    }
                    sumSq += acc!.Item();
                }
                total = Math.Sqrt(sumSq);
            }
        }
        double coef = maxNorm / (total + 1e-6);
        if (coef < 1)
        {
            using var _ = GradMode.NoGrad();
            foreach (var p in withGrad)
            {
                var scaled = TensorScope.Detach(Ops.Scale(p.Grad!, coef));
                p.Grad!.Backend.Copy(p.Grad!, scaled);
                scaled.Dispose();
            }
        }
        return total;
    }
}
