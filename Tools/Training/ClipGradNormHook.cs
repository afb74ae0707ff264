// --clip-grad-norm as a training-step hook: after the backward pass, before the optimizer step,
// the gradients' total L2 norm is clipped as torch.nn.utils.clip_grad_norm_ does (GradClip).
using ResidualEngine.Nn.Optim;

namespace ResidualEngine.Training;

public sealed class ClipGradNormHook(double maxNorm) : ITrainingHook
{
    public double MaxNorm { get; } = maxNorm > 0 && double.IsFinite(maxNorm) ? maxNorm
        : throw new ArgumentException($"clip-grad-norm must be positive and finite, got {maxNorm}", nameof(maxNorm));

    /// <summary>The total norm before clipping at the last step.</summary>
    public double LastNorm { get; private set; }

    public void BeforeOptimizerStep(StepContext step)
    {
        ArgumentNullException.ThrowIfNull(step);
        LastNorm = GradClip.ClipGradNorm(step.Optimizer.Parameters, MaxNorm);
    }
}
