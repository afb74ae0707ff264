// Reverse-mode differentiation. Iterative (explicit stack, no recursion, so a ResNet-1202
// graph is fine), deterministic (inputs visited in order), and each node's saved tensors are
// freed right after its backward. A tensor used twice (the residual identity) receives the
// sum of both paths; leaves accumulate into .Grad.
//
// Gradients that meet at a node are summed in place only into a buffer the engine owns
// exclusively (its handle holds the last reference to the storage); otherwise the sum is made out
// of place. Backward functions may return views of dY or the same buffer for several inputs
// (Add's backward does), and a user's seed gradient is never written into. Once a leaf's
// gradient is complete it lands in .Grad at once (not when the depth-first walk would come back
// to it) and its gradient-ready hooks run (GradHooks.cs), before the pass goes on: so a network's
// last layers' gradients are final while its first layers' are still being computed.
namespace ResidualEngine.Autograd;

public static class GradEngine
{
    public static void Backward(Tensor root, Tensor? gradient = null)
    {
        ArgumentNullException.ThrowIfNull(root);
        if (root.IsDisposed) throw new ObjectDisposedException(nameof(Tensor), $"Backward() on a disposed tensor {root.Describe()}");
        if (!root.RequiresGrad)
            throw new InvalidOperationException("Backward() on a tensor that does not require grad: no input of the computation requires a gradient");
        if (gradient is null && root.Numel != 1)
            throw new InvalidOperationException($"Backward() without a gradient needs a scalar, got shape {root.Shape}");
        if (gradient is not null && gradient.Shape != root.Shape)
            throw new ArgumentException($"gradient shape {gradient.Shape} does not match the tensor's shape {root.Shape}");
        if (gradient is not null && (gradient.Device != root.Device || gradient.DType != root.DType))
            throw new ArgumentException($"gradient {gradient.Describe()} must have the tensor's dtype and device ({root.DType} on {root.Device})");

        using var noGrad = GradMode.NoGrad();
        var start = root.GradFn ?? root.GradAccumulator();
        var seed = gradient is null ? Tensor.Full(root.Shape, 1.0, root.DType, root.Device) : gradient.Detach();
        TensorScope.Detach(seed);

        // Count, for every node reachable from the root, how many edges lead into it.
        var pending = new Dictionary<Node, int>(ReferenceEqualityComparer.Instance) { [start] = 0 };
        var stack = new Stack<Node>();
        stack.Push(start);
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            if (n.Released)
            {
                seed.Dispose();
                throw new InvalidOperationException($"Backward through {n.Name} a second time: its saved tensors were already freed by an earlier Backward()");
            }
            for (int i = 0; i < n.InputCount; i++)
            {
                if (n.Next(i) is not { } p) continue;
                if (pending.TryGetValue(p, out var c)) pending[p] = c + 1;
                else { pending[p] = 1; stack.Push(p); }
            }
        }

        var grads = new Dictionary<Node, Tensor>(ReferenceEqualityComparer.Instance) { [start] = seed };
        var ready = new Stack<Node>();
        ready.Push(start);
        try
        {
            while (ready.Count > 0)
            {
                var n = ready.Pop();
                var dY = grads[n];
                grads.Remove(n);
                if (n is AccumulateGrad acc)
                {
                    AccumulateIntoLeaf(acc, dY);
                    continue;
                }
                Tensor?[] dX;
                try { dX = n.Backward(dY); }
                finally { dY.Dispose(); n.ReleaseSaved(); }
                if (dX.Length != n.InputCount)
                {
                    foreach (var g in dX) g?.Dispose();
                    throw new InvalidOperationException($"{n.Name}.Backward returned {dX.Length} gradients for {n.InputCount} inputs");
                }
                // Visit inputs in reverse so that the first input's producer is processed first (stack order).
                for (int i = n.InputCount - 1; i >= 0; i--)
                {
                    var g = dX[i];
                    if (g is not null) TensorScope.Detach(g);
                    if (n.Next(i) is not { } p) { g?.Dispose(); continue; }
                    if (g is null)
                        throw new InvalidOperationException($"{n.Name}.Backward returned no gradient for input {i}, which requires one");
                    if (g.Shape != n.InputShape(i))
                    {
                        g.Dispose();
                        throw new InvalidOperationException($"{n.Name}.Backward produced a gradient of shape {g.Shape} for input {i} of shape {n.InputShape(i)}");
                    }
                    if (g.Format != n.InputFormat(i))
                    {
                        // A gradient always arrives in its input's memory format (so sums never mix formats).
                        var converted = TensorScope.Detach(g.To(n.InputFormat(i)));
                        g.Dispose();
                        g = converted;
                    }
                    grads[p] = grads.TryGetValue(p, out var sum) ? AddOwned(sum, g) : g;
                    if (--pending[p] != 0) continue;
                    if (p is AccumulateGrad leafSink)
                    {
                        // A leaf's gradient is complete: land it now, not when the depth-first walk
                        // comes back to it, so its hooks run while the rest of the pass computes.
                        var complete = grads[p];
                        grads.Remove(p);
                        AccumulateIntoLeaf(leafSink, complete);
                    }
                    else ready.Push(p);
                }
            }
        }
        finally
        {
            foreach (var g in grads.Values) g.Dispose();
        }
    }

    /// <summary>a + b, consuming both handles. Writes in place only into a buffer held by nothing else.</summary>
    internal static Tensor AddOwned(Tensor a, Tensor b)
    {
        if (a.Storage.IsExclusive) { Ops.AddInPlace(a, b); b.Dispose(); return a; }
        if (b.Storage.IsExclusive) { Ops.AddInPlace(b, a); a.Dispose(); return b; }
        var sum = Ops.AddNoGrad(a, b);
        a.Dispose();
        b.Dispose();
        return TensorScope.Detach(sum);
    }

    /// <summary>leaf.Grad += g. A first gradient is adopted only if no one else holds its buffer
    /// (else copied), so that later in-place accumulation never writes into someone else's data.</summary>
    private static void AccumulateIntoLeaf(AccumulateGrad node, Tensor g)
    {
        var leaf = node.Leaf;
        if (leaf is null || !leaf.RequiresGrad) { g.Dispose(); return; }
        if (leaf.Grad is null)
        {
            if (g.Storage.IsExclusive) leaf.Grad = g;
            else { leaf.Grad = TensorScope.Detach(g.Clone()); g.Dispose(); }
        }
        else leaf.Grad = AddOwned(leaf.Grad, g);
        node.RunHooks(leaf); // every path to the leaf was summed: its gradient of this pass is final
    }
}
