// Per-leaf "gradient ready" hooks (torch's register_post_accumulate_grad_hook): code that must
// act as soon as a leaf's gradient of the current backward pass is complete, while the rest of
// the pass is still running. Data-parallel training starts the all-reduce of a gradient bucket
// from here, so communication overlaps the remaining backward compute; anything else that wants
// a gradient the moment it is final (logging, clipping per tensor) can use the same hook.
//
// A hook runs on the thread that runs Backward, once per Backward call that reaches the leaf,
// right after the gradient of that pass was added into Tensor.Grad (every path to the leaf has
// been summed by then). It sees the leaf; Grad holds the accumulated value. An exception thrown by
// a hook ends the Backward call (the pass's remaining gradients are freed) and reaches its caller.
namespace ResidualEngine;

public sealed partial class Tensor
{
    /// <summary>
    /// Calls <paramref name="hook"/> with this leaf each time a backward pass has finished
    /// accumulating into its <see cref="Grad"/>. Dispose the result to remove the hook.
    /// </summary>
    public IDisposable RegisterGradReadyHook(Action<Tensor> hook)
    {
        ArgumentNullException.ThrowIfNull(hook);
        if (!IsLeaf) throw new InvalidOperationException($"RegisterGradReadyHook: {Describe()} is not a leaf (only leaves accumulate gradients)");
        if (!DType.IsFloat()) throw new InvalidOperationException($"RegisterGradReadyHook: {Describe()} cannot have a gradient");
        return ((Autograd.AccumulateGrad)GradAccumulator()).AddHook(hook);
    }
}
