// --clip-grad-norm as a training-step hook: after the backward pass, before the optimizer step,
// the gradients' total L2 norm is clipped as torch.nn.utils.clip_grad_norm_ does (GradClip), on
// the gradients' device without waiting for it; the norm is read back only when LastNorm is asked.
using ResidualEngine.Nn.Optim;

namespace ResidualEngine.Training;

public sealed class ClipGradNormHook(double maxNorm) : ITrainingHook, IDisposable
{
    private Tensor? _lastSumSq;

    public double MaxNorm { get; } = maxNorm > 0 && double.IsFinite(maxNorm) ? maxNorm
        : throw new ArgumentException($"clip-grad-norm must be positive and finite, got {maxNorm}", nameof(maxNorm));

    /// <summary>The total norm before clipping at the last step (0 before any); reading it waits for the device.</summary>
    public double LastNorm => _lastSumSq is { } s ? Math.Sqrt(s.Item()) : 0;

    public void BeforeOptimizerStep(StepContext step)
    {
        ArgumentNullException.ThrowIfNull(step);
        var s = GradClip.ClipGradNormDeferred(step.Optimizer.Parameters, MaxNorm);
        _lastSumSq?.Dispose();
        _lastSumSq = s;
    }

    public void Dispose()
    {
        _lastSumSq?.Dispose();
        _lastSumSq = null;
    }
}
