// What a training loop needs from an optimizer, whatever its update rule (SGD today; AdamW,
// LARS and others implement the same contract): the learning rate it applies, one update from
// the gradients, clearing them, and its state as named tensors for checkpoints.
namespace ResidualEngine.Nn.Optim;

public interface IOptimizer : IDisposable
{
    /// <summary>The learning rate the next <see cref="Step"/> applies (schedules set it before every step).</summary>
    double LearningRate { get; set; }

    /// <summary>Number of <see cref="Step"/> calls so far (restored by <see cref="LoadState"/>).</summary>
    long StepCount { get; }

    /// <summary>The parameters this optimizer updates (every group, in order).</summary>
    IEnumerable<Tensor> Parameters { get; }

    /// <summary>One update of every parameter that has a gradient.</summary>
    void Step();

    /// <summary>Drops every parameter's gradient.</summary>
    void ZeroGrad();

    /// <summary>The optimizer's state tensors by name (its own tensors: copy them to keep them).</summary>
    IReadOnlyList<(string Name, Tensor Buffer)> StateTensors();

    /// <summary>Replaces the state with what <see cref="StateTensors"/> returned, plus the step count.</summary>
    void LoadState(IReadOnlyDictionary<string, Tensor> state, long stepCount);
}
