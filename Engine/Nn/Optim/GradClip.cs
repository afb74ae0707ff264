// Gradient clipping by total norm, as torch.nn.utils.clip_grad_norm_: the norm of all gradients
// taken together (the norm of the per-tensor norms), and when it exceeds maxNorm every gradient
// is multiplied by maxNorm / (total + 1e-6). The squared norms are summed on the gradients' device;
// reading the total back is the one wait per step (torch keeps the coefficient on the device and
// waits for nothing; ours has no device-side min yet). The infinity norm is computed on the host.
using ResidualEngine.Autograd;

namespace ResidualEngine.Nn.Optim;

public static class GradClip
{
    /// <summary>Clips the gradients of <paramref name="parameters"/> in place; returns the total norm before clipping
    /// (0 when no parameter has a gradient). <paramref name="normType"/>: 2, or +infinity.</summary>
    public static double ClipGradNorm(IEnumerable<Tensor> parameters, double maxNorm, double normType = 2)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (!(maxNorm > 0) || double.IsInfinity(maxNorm)) throw new ArgumentException($"ClipGradNorm: maxNorm must be positive and finite, got {maxNorm}");
        if (normType != 2 && !double.IsPositiveInfinity(normType)) throw new ArgumentException($"ClipGradNorm: norm type must be 2 or infinity, got {normType}");
        var withGrad = parameters.Where(p => p.Grad is not null).ToList();
        if (withGrad.Count == 0) return 0;
        double total;
        using (GradMode.NoGrad())
        using (TensorScope.Begin())
        {
            if (double.IsPositiveInfinity(normType))
                total = withGrad.Max(p => p.Grad!.ToDoubles().Select(Math.Abs).DefaultIfEmpty(0).Max());
            else
            {
                var groups = withGrad.GroupBy(p => (p.Grad!.Device, p.Grad!.DType));
                double sumSq = 0;
                foreach (var g in groups)
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
            foreach (var p in withGrad)
            {
                using var _ = GradMode.NoGrad();
                var scaled = TensorScope.Detach(Ops.Scale(p.Grad!, coef));
                p.Grad!.Backend.Copy(p.Grad!, scaled);
                scaled.Dispose();
            }
        }
        return total;
    }
}
