// Reverse-mode differentiation. Iterative (explicit stack, no recursion, so a ResNet-1202
// graph is fine), deterministic (inputs visited in order), and each node's saved tensors are
// freed right after its backward. A tensor used twice (the residual identity) receives the
// sum of both paths; leaves accumulate into .Grad with +=.
namespace ResidualEngine.Autograd;

public static class GradEngine
{
    public static void Backward(Tensor root, Tensor? gradient = null)
    {
        ArgumentNullException.ThrowIfNull(root);
        if (!root.RequiresGrad)
            throw new InvalidOperationException("Backward() on a tensor that does not require grad: no input of the computation requires a gradient");
        if (gradient is null && root.Numel != 1)
            throw new InvalidOperationException($"Backward() without a gradient needs a scalar, got shape {root.Shape}");
        if (gradient is not null && gradient.Shape != root.Shape)
            throw new ArgumentException($"gradient shape {gradient.Shape} does not match the tensor's shape {root.Shape}");

        using var noGrad = GradMode.NoGrad();
        var seed = gradient is null ? Tensor.Full(root.Shape, 1.0, root.DType, root.Device) : gradient.Detach();
        TensorScope.Detach(seed);

        if (root.GradFn is null)
        {
            Accumulate(root, seed);
            return;
        }

        // Count, for every node reachable from the root, how many edges lead into it.
        var pending = new Dictionary<Node, int>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<Node>();
        stack.Push(root.GradFn);
        pending[root.GradFn] = 0;
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            if (n.Released)
                throw new InvalidOperationException($"Backward through {n.Name} a second time: its saved tensors were already freed, by an earlier Backward() or because its output tensor was disposed");
            foreach (var input in n.Inputs)
            {
                if (input?.GradFn is not { } p) continue;
                if (pending.TryGetValue(p, out var c)) pending[p] = c + 1;
                else { pending[p] = 1; stack.Push(p); }
            }
        }

        var grads = new Dictionary<Node, Tensor>(ReferenceEqualityComparer.Instance) { [root.GradFn] = seed };
        var ready = new Stack<Node>();
        ready.Push(root.GradFn);
        try
        {
            while (ready.Count > 0)
            {
                var n = ready.Pop();
                var dY = grads[n];
                grads.Remove(n);
                Tensor?[] dX;
                try { dX = n.Backward(dY); }
                finally { dY.Dispose(); n.ReleaseSaved(); }
                if (dX.Length != n.Inputs.Length)
                    throw new InvalidOperationException($"{n.Name}.Backward returned {dX.Length} gradients for {n.Inputs.Length} inputs");
                // Visit inputs in reverse so that the first input's producer is processed first (stack order).
                for (int i = n.Inputs.Length - 1; i >= 0; i--)
                {
                    var input = n.Inputs[i];
                    var g = dX[i];
                    if (input is null) { g?.Dispose(); continue; }
                    if (g is null)
                        throw new InvalidOperationException($"{n.Name}.Backward returned no gradient for input {i}, which requires one");
                    TensorScope.Detach(g);
                    if (g.Shape != input.Shape)
                        throw new InvalidOperationException($"{n.Name}.Backward produced a gradient of shape {g.Shape} for input {i} of shape {input.Shape}");
                    if (input.GradFn is { } p)
                    {
                        if (grads.TryGetValue(p, out var acc))
                        {
                            acc.Backend.Add(acc, acc, g);
                            g.Dispose();
                        }
                        else grads[p] = g;
                        if (--pending[p] == 0) ready.Push(p);
                    }
                    else Accumulate(input, g);
                }
            }
        }
        finally
        {
            foreach (var g in grads.Values) g.Dispose();
        }
    }

    private static void Accumulate(Tensor leaf, Tensor g)
    {
        if (!leaf.RequiresGrad) { g.Dispose(); return; }
        if (leaf.Grad is null) leaf.Grad = g;
        else
        {
            leaf.Grad.Backend.Add(leaf.Grad, leaf.Grad, g);
            g.Dispose();
        }
    }
}
