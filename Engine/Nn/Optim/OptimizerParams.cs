// What every optimizer (Sgd, and AdamW/LARS through StatefulOptimizer) does the same way with its
// parameters, written once: flattening and checking parameter groups, the learning-rate check,
// the per-step gradient check, ZeroGrad, and the checks on a checkpoint's per-parameter entry.
// `who` names the optimizer in messages ("Sgd", "AdamW", ...).
namespace ResidualEngine.Nn.Optim;

internal static class OptimizerParams
{
    /// <summary>Every parameter of <paramref name="groups"/> in order, with its group's weight decay; rejects nulls,
    /// disposed, non-float, non-leaf and repeated parameters, invalid weight decays and an empty list.</summary>
    public static Tensor[] Flatten(IEnumerable<ParamGroup> groups, string who, out double[] weightDecay)
    {
        var ps = new List<Tensor>();
        var wds = new List<double>();
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        int g = 0;
        foreach (var group in groups)
        {
            if (group is null) throw new ArgumentException($"{who}: parameter group {g} is null");
            ArgumentNullException.ThrowIfNull(group.Parameters);
            if (!(group.WeightDecay >= 0) || double.IsInfinity(group.WeightDecay))
                throw new ArgumentException($"{who}: invalid weight decay value {group.WeightDecay} in parameter group {g} (must be >= 0)");
            foreach (var p in group.Parameters)
            {
                if (p is null) throw new ArgumentException($"{who}: parameter group {g} contains a null parameter");
                if (p.IsDisposed) throw new ArgumentException($"{who}: parameter {p.Name ?? "?"} in group {g} was disposed");
                if (!p.DType.IsFloat()) throw new ArgumentException($"{who}: parameter {p.Describe()} is not floating-point");
                if (!p.IsLeaf) throw new ArgumentException($"{who}: can only optimise leaf tensors, {p.Describe()} is computed");
                if (!seen.Add(p)) throw new ArgumentException($"{who}: parameter {p.Describe()} appears more than once (in group {g})");
                ps.Add(p);
                wds.Add(group.WeightDecay);
            }
            g++;
        }
        if (ps.Count == 0) throw new ArgumentException($"{who}: optimizer got an empty parameter list");
        weightDecay = wds.ToArray();
        return ps.ToArray();
    }

    public static void CheckLr(double lr, string who)
    {
        if (!(lr >= 0) || double.IsInfinity(lr)) throw new ArgumentException($"{who}: invalid learning rate {lr} (must be >= 0 and finite)");
    }

    /// <summary>Parameter <paramref name="i"/>'s gradient for a step (null: skip it), checked against the parameter.</summary>
    public static Tensor? Gradient(Tensor p, int i, string who)
    {
        var g = p.Grad;
        if (g is null) return null;
        if (p.IsDisposed) throw new ObjectDisposedException(p.Name, $"{who}: parameter {i} ({p.Name}) was disposed");
        if (g.Shape != p.Shape || g.DType != p.DType || g.Device != p.Device)
            throw new InvalidOperationException($"{who}: gradient {g.Describe()} does not match parameter {p.Describe()}");
        return g;
    }

    /// <summary>Drops every parameter's gradient (set to none, as PyTorch's default).</summary>
    public static void ZeroGrad(Tensor[] ps)
    {
        foreach (var p in ps)
        {
            p.Grad?.Dispose();
            p.Grad = null;
        }
    }

    /// <summary>A checkpoint entry <paramref name="name"/> for parameter <paramref name="i"/>: in range, alive, of its shape.</summary>
    public static void CheckStateEntry(string who, string name, Tensor? t, int i, Tensor[] ps)
    {
        if (i >= ps.Length) throw new ArgumentException($"{who}.LoadState: '{name}' refers to parameter {i}, but the optimizer has {ps.Length}");
        if (t is null || t.IsDisposed) throw new ArgumentException($"{who}.LoadState: '{name}' is null or disposed");
        if (t.Shape != ps[i].Shape)
            throw new ArgumentException($"{who}.LoadState: '{name}' has shape {t.Shape} but parameter {i} ({ps[i].Name}) has {ps[i].Shape}");
    }
}
