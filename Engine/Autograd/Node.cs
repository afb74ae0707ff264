// One recorded operation in the autograd graph. The graph owns itself, independently of tensor
// handles (as PyTorch's does): a node holds an edge to the node that produced each input (or to
// the input leaf's AccumulateGrad) and its own references to the storages its backward needs
// ("saved" tensors). A node is reference-counted by the handles whose GradFn it is and by the
// nodes with an edge to it; when the count reaches zero nothing can run its backward any more,
// so it frees what it saved and lets go of its edges. Disposing a tensor handle therefore never
// breaks a backward that the rest of the graph can still run, and disposing the last handle of
// a graph frees the graph. Saved tensors are also freed right after the node's backward runs.
namespace ResidualEngine.Autograd;

public abstract class Node
{
    private readonly Node?[] _next;
    private readonly Shape?[] _inputShapes;
    private readonly MemoryFormat[] _inputFormats;
    private List<Tensor>? _saved;
    private int _refs;

    /// <param name="inputs">The op's tensor inputs in order; those that do not require grad get no gradient.</param>
    protected Node(params Tensor?[] inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        _next = new Node?[inputs.Length];
        _inputShapes = new Shape?[inputs.Length];
        _inputFormats = new MemoryFormat[inputs.Length];
        for (int i = 0; i < inputs.Length; i++)
        {
            if (inputs[i] is not { RequiresGrad: true } t) continue;
            var edge = t.GradFn ?? t.GradAccumulator();
            edge.AddRef();
            _next[i] = edge;
            _inputShapes[i] = t.Shape;
            _inputFormats[i] = t.Format;
        }
    }

    /// <summary>Op name for error messages and profiles ("Conv2d", "Relu", ...).</summary>
    public abstract string Name { get; }

    /// <summary>Number of inputs (gradient slots) of this node.</summary>
    public int InputCount => _next.Length;

    /// <summary>The node that receives the gradient of input <paramref name="i"/>, or null when that input needs none.</summary>
    internal Node? Next(int i) => _next[i];

    /// <summary>Shape of input <paramref name="i"/> (null when it needs no gradient).</summary>
    internal Shape? InputShape(int i) => _inputShapes[i];

    /// <summary>Memory format of input <paramref name="i"/> (its gradient is delivered in the same one).</summary>
    internal MemoryFormat InputFormat(int i) => _inputFormats[i];

    /// <summary>True when input <paramref name="i"/> needs a gradient.</summary>
    protected bool NeedsGrad(int i) => _next[i] is not null;

    /// <summary>
    /// Gradients with respect to each input, given the gradient of the output. Entries for
    /// inputs that need no gradient are null. Runs with grad mode off; the returned tensors
    /// belong to the engine (they may share storage with <paramref name="dY"/> or with each other:
    /// the engine never writes into a buffer it does not own exclusively).
    /// </summary>
    protected internal abstract Tensor?[] Backward(Tensor dY);

    /// <summary>Keeps a tensor's data alive for backward (a new handle on its storage) and returns that handle.</summary>
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

    /// <summary>True once the saved tensors are gone (after a backward, or once the node became unreachable).</summary>
    internal bool Released { get; private set; }

    /// <summary>Frees every saved tensor. Called by the engine right after Backward, and when the node becomes unreachable.</summary>
    internal void ReleaseSaved()
    {
        Released = true;
        var saved = Interlocked.Exchange(ref _saved, null);
        if (saved is null) return;
        foreach (var t in saved) t.Dispose();
    }

    internal virtual void AddRef() => Interlocked.Increment(ref _refs);

    internal virtual void Release()
    {
        if (Interlocked.Decrement(ref _refs) != 0) return;
        // Unreachable: no handle and no downstream node can start a backward through this node.
        // Free iteratively, so that dropping a 1000-layer graph does not recurse 1000 deep.
        var stack = new Stack<Node>();
        stack.Push(this);
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            n.ReleaseSaved();
            for (int i = 0; i < n._next.Length; i++)
            {
                var e = n._next[i];
                n._next[i] = null;
                if (e is not null && e.DropRef()) stack.Push(e);
            }
        }
    }

    /// <summary>Decrements without freeing; true when the count reached zero (the caller frees).</summary>
    private protected virtual bool DropRef() => Interlocked.Decrement(ref _refs) == 0;
}

/// <summary>
/// The graph's sink for a leaf that requires grad: adds the gradient into the leaf's
/// <see cref="Tensor.Grad"/>. One per leaf, so every use of the leaf is summed before it lands.
/// It saves nothing and is not reference-counted (it lives as long as its leaf).
/// </summary>
internal sealed class AccumulateGrad : Node
{
    private readonly WeakReference<Tensor> _leaf;

    public AccumulateGrad(Tensor leaf) : base() => _leaf = new WeakReference<Tensor>(leaf);

    public override string Name => "AccumulateGrad";

    /// <summary>The leaf, or null when it was disposed or collected (its gradient is then dropped).</summary>
    public Tensor? Leaf => _leaf.TryGetTarget(out var t) && !t.IsDisposed ? t : null;

    protected internal override Tensor?[] Backward(Tensor dY) => throw new InvalidOperationException("AccumulateGrad is applied by the engine");

    private Action<Tensor>[] _hooks = [];

    /// <summary>Adds a gradient-ready hook (see Tensor.RegisterGradReadyHook); copy-on-write, so a running backward is not disturbed.</summary>
    internal IDisposable AddHook(Action<Tensor> hook)
    {
        lock (this) _hooks = [.. _hooks, hook];
        return new HookRegistration(this, hook);
    }

    /// <summary>Runs the hooks after the leaf's gradient of a pass was accumulated.</summary>
    internal void RunHooks(Tensor leaf)
    {
        foreach (var h in Volatile.Read(ref _hooks)) h(leaf);
    }

    private sealed class HookRegistration(AccumulateGrad owner, Action<Tensor> hook) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) != 0) return;
            lock (owner)
            {
                int i = Array.IndexOf(owner._hooks, hook);
                if (i >= 0) owner._hooks = [.. owner._hooks[..i], .. owner._hooks[(i + 1)..]];
            }
        }
    }

    internal override void AddRef() { }
    internal override void Release() { }
    private protected override bool DropRef() => false;
}
