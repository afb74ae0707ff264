// One recorded operation in the autograd graph. A node keeps references to its inputs (for
// routing gradients, never to read them) and owns aliases of the tensors its backward needs
// ("saved" tensors). Those are released as soon as its backward has run.
namespace ResidualEngine.Autograd;

public abstract class Node
{
    private List<Tensor>? _saved;

    /// <param name="inputs">The op's tensor inputs in order; those that do not require grad get no gradient.</param>
    protected Node(params Tensor?[] inputs)
    {
        Inputs = new Tensor?[inputs.Length];
        for (int i = 0; i < inputs.Length; i++)
            Inputs[i] = inputs[i] is { RequiresGrad: true } t ? t : null;
    }

    /// <summary>Op name for error messages and profiles ("Conv2d", "Relu", ...).</summary>
    public abstract string Name { get; }

    /// <summary>Inputs that need a gradient (null where not).</summary>
    public Tensor?[] Inputs { get; }

    /// <summary>True when input <paramref name="i"/> needs a gradient.</summary>
    protected bool NeedsGrad(int i) => Inputs[i] is not null;

    /// <summary>
    /// Gradients with respect to each input, given the gradient of the output. Entries for
    /// inputs that need no gradient are null. Runs with grad mode off; the returned tensors
    /// belong to the engine.
    /// </summary>
    protected internal abstract Tensor?[] Backward(Tensor dY);

    /// <summary>Keeps a tensor alive for backward (shares its storage) and returns the alias.</summary>
    protected Tensor Save(Tensor t)
    {
        ArgumentNullException.ThrowIfNull(t);
        var alias = TensorScope.Detach(t.Detach());
        (_saved ??= new()).Add(alias);
        return alias;
    }

    /// <summary>Takes ownership of a tensor made for backward (e.g. BN's batch statistics).</summary>
    protected Tensor Own(Tensor t)
    {
        ArgumentNullException.ThrowIfNull(t);
        TensorScope.Detach(t);
        (_saved ??= new()).Add(t);
        return t;
    }

    internal bool Released { get; private set; }

    /// <summary>Frees every saved tensor. Called by the engine right after Backward, or when the graph is dropped.</summary>
    internal void ReleaseSaved()
    {
        Released = true;
        if (_saved is null) return;
        foreach (var t in _saved) t.Dispose();
        _saved = null;
    }
}
