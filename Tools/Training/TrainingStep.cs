// One training step, the only one in the code base: `residual train`, `residual bench`, both
// experiments and users' own loops call it. Per step: set the learning rate, move the batch to
// the model's device, zero the gradients, forward, loss, backward, optimizer step. Recipe pieces
// attach as hooks at fixed points (a hook may replace images and targets before the forward,
// gradient clipping runs before the optimizer step, EMA after it) and the loss is a delegate
// (label smoothing). Mixed batches (mixup, cutmix: the loader mixes sample i with sample i - 1,
// see Data/Augment/MixupCutmix.cs) have the soft targets lambda onehot(y) + (1 - lambda)
// onehot(y'); the step computes their loss as lambda L(y) + (1 - lambda) L(y'). That is exactly
// the cross-entropy with the probability targets, label smoothing included, because both are
// linear in the target distribution (checked against torch's cross_entropy with probability
// targets); it needs no soft-target op and no (N, K) target tensor, and any loss delegate that is
// linear in its target (the cross-entropy is) gets it for free. Everything the step allocates is freed when it returns,
// except the loss and logits it hands back (detached from the graph); nothing is read back to
// the host, so on a GPU a step never waits for the device.
using ResidualEngine.Data;
using ResidualEngine.Nn;
using ResidualEngine.Nn.Optim;

namespace ResidualEngine.Training;

/// <summary>A scalar loss from the logits (N, K) and the targets (class indices, or whatever a hook made of them).</summary>
public delegate Tensor LossFunction(Tensor logits, Tensor targets);

/// <summary>
/// Code run at fixed points of every <see cref="TrainingStep"/>; implement only the methods you need.
/// Hooks run in the order they were added to <see cref="TrainingStep.Hooks"/>.
/// </summary>
public interface ITrainingHook
{
    /// <summary>Before the forward pass: may replace <see cref="StepContext.Images"/> and <see cref="StepContext.Targets"/> (mixup, cutmix).</summary>
    void BeforeForward(StepContext step) { }

    /// <summary>After the loss was computed, before the backward pass.</summary>
    void AfterForward(StepContext step) { }

    /// <summary>Gradients are in place and the optimizer has not run yet (gradient clipping, inspection).</summary>
    void BeforeOptimizerStep(StepContext step) { }

    /// <summary>After the parameters were updated (an exponential moving average of the weights).</summary>
    void AfterOptimizerStep(StepContext step) { }
}

/// <summary>What one step works on; hooks read it and may replace the inputs before the forward pass.</summary>
public sealed class StepContext
{
    internal StepContext(TrainingStep owner, Tensor images, Tensor labels, int batchIndex)
    {
        BatchIndex = batchIndex;
        Model = owner.Model;
        Optimizer = owner.Optimizer;
        StepIndex = owner.Optimizer.StepCount;
        Images = images;
        Labels = labels;
        Targets = labels;
    }

    public Module Model { get; }
    public IOptimizer Optimizer { get; }
    /// <summary>Optimizer steps taken before this one.</summary>
    public long StepIndex { get; }
    /// <summary>The batch's position in its epoch (a loader's <see cref="Batch.Index"/>), or -1 when the step was given bare tensors.</summary>
    public int BatchIndex { get; }
    /// <summary>The batch's images on the model's device; a hook may replace them before the forward pass.</summary>
    public Tensor Images { get; set; }
    /// <summary>The batch's class indices on the model's device, as given (metrics use these).</summary>
    public Tensor Labels { get; }
    /// <summary>What the loss compares the logits with: the labels, unless a hook replaced them.</summary>
    public Tensor Targets { get; set; }
    /// <summary>Mixed batches: the partner targets (sample i - 1's); the loss is MixLambda L(Targets) + (1 - MixLambda) L(MixTargets).</summary>
    public Tensor? MixTargets { get; set; }
    /// <summary>The weight of <see cref="Targets"/> when <see cref="MixTargets"/> is set.</summary>
    public double MixLambda { get; set; } = 1;
    /// <summary>The forward pass's output (set after the forward pass).</summary>
    public Tensor? Logits { get; internal set; }
    /// <summary>The scalar loss (set after the forward pass).</summary>
    public Tensor? Loss { get; internal set; }
}

/// <summary>
/// A step's loss (scalar) and logits, detached from the autograd graph. They belong to the
/// TensorScope that was current when the step was called (or to the caller when there was none);
/// disposing the result frees them early.
/// </summary>
public sealed class StepResult(Tensor loss, Tensor logits) : IDisposable
{
    public Tensor Loss { get; } = loss;
    public Tensor Logits { get; } = logits;

    /// <summary>The loss as a number (waits for the device).</summary>
    public double LossValue() => Loss.Item();

    public void Dispose()
    {
        Loss.Dispose();
        Logits.Dispose();
    }
}

public sealed class TrainingStep
{
    public TrainingStep(Module model, IOptimizer optimizer, LossFunction? loss = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        Model = model;
        Optimizer = optimizer;
        Loss = loss ?? CrossEntropy();
    }

    public Module Model { get; }
    public IOptimizer Optimizer { get; }
    public LossFunction Loss { get; set; }
    public List<ITrainingHook> Hooks { get; } = new();

    /// <summary>Softmax cross-entropy against class indices, with optional label smoothing (as torch's CrossEntropyLoss).</summary>
    public static LossFunction CrossEntropy(double labelSmoothing = 0)
    {
        if (!(labelSmoothing >= 0 && labelSmoothing < 1))
            throw new ArgumentException($"label smoothing must be in [0, 1), got {labelSmoothing}", nameof(labelSmoothing));
        return (logits, targets) => Ops.SoftmaxCrossEntropy(logits, targets, labelSmoothing);
    }

    /// <summary>
    /// The loss on the soft targets lambda onehot(<paramref name="targets"/>) + (1 - lambda) onehot(<paramref name="partner"/>):
    /// lambda L(targets) + (1 - lambda) L(partner), exact for a loss linear in its target (cross-entropy, with label smoothing too).
    /// </summary>
    public static Tensor MixedLoss(LossFunction loss, Tensor logits, Tensor targets, Tensor partner, double lambda)
    {
        ArgumentNullException.ThrowIfNull(loss);
        if (!(lambda >= 0 && lambda <= 1)) throw new ArgumentException($"TrainingStep: the mix weight must be in [0, 1], got {lambda}", nameof(lambda));
        return Ops.Map<Pointwise.Axpby>(loss(logits, targets), loss(logits, partner), lambda, 1.0 - lambda);
    }

    /// <summary>One step on a loader's batch, mixed targets included (see <see cref="Run(Tensor, Tensor, double?, BatchMix?)"/>).</summary>
    public StepResult Run(Batch batch, double? learningRate = null)
    {
        ArgumentNullException.ThrowIfNull(batch);
        return Run(batch.Images, batch.Labels, learningRate, batch.Mix, batch.Index);
    }

    /// <summary>
    /// One optimizer step on images (N, C, H, W) and labels (N): sets the learning rate when one is
    /// given, puts the model in training mode, and moves the batch to the model's device if needed.
    /// With <paramref name="mix"/>, the images were mixed and the targets are its soft targets.
    /// </summary>
    public StepResult Run(Tensor images, Tensor labels, double? learningRate = null, BatchMix? mix = null) => Run(images, labels, learningRate, mix, -1);

    private StepResult Run(Tensor images, Tensor labels, double? learningRate, BatchMix? mix, int batchIndex)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        if (images.Rank < 1 || labels.Rank < 1 || images.Shape[0] != labels.Shape[0])
            throw new ArgumentException($"TrainingStep: {images.Describe()} and {labels.Describe()} do not hold the same number of samples");
        if (learningRate is { } lr) Optimizer.LearningRate = lr;
        if (!Model.Training) Model.Train();
        var device = Model.Device;
        using var scope = TensorScope.Begin();
        var x = images.Device == device ? images : images.To(device);
        var y = labels.Device == device ? labels : labels.To(device);
        var ctx = new StepContext(this, x, y, batchIndex);
        if (mix is not null)
        {
            if (mix.PartnerLabels.Numel != labels.Numel)
                throw new ArgumentException($"TrainingStep: the mix's partner labels {mix.PartnerLabels.Describe()} do not match {labels.Describe()}");
            ctx.MixTargets = mix.PartnerLabels.Device == device ? mix.PartnerLabels : mix.PartnerLabels.To(device);
            ctx.MixLambda = mix.Lambda;
        }
        foreach (var h in Hooks) h.BeforeForward(ctx);
        Optimizer.ZeroGrad();
        ctx.Logits = Model.Forward(ctx.Images);
        ctx.Loss = ctx.MixTargets is { } partner ? MixedLoss(Loss, ctx.Logits, ctx.Targets, partner, ctx.MixLambda) : Loss(ctx.Logits, ctx.Targets);
        if (ctx.Loss.Numel != 1) throw new InvalidOperationException($"TrainingStep: the loss function returned {ctx.Loss.Describe()}, not a scalar");
        foreach (var h in Hooks) h.AfterForward(ctx);
        ctx.Loss.Backward();
        foreach (var h in Hooks) h.BeforeOptimizerStep(ctx);
        Optimizer.Step();
        foreach (var h in Hooks) h.AfterOptimizerStep(ctx);
        return new StepResult(scope.Keep(ctx.Loss.Detach()), scope.Keep(ctx.Logits.Detach()));
    }
}
