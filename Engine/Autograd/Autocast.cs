// Automatic mixed precision, as torch.autocast: inside `using (Autocast.Begin(DType.BF16))` the ops
// choose their own precision, with PyTorch's policy:
//   - convolution and linear (the matrix products) cast their F32 inputs, weights and biases to the
//     autocast type (BF16 or F16) and run there, with F32 accumulation in the backends;
//   - softmax cross-entropy casts 16-bit logits to F32 (PyTorch's "fp32" list);
//   - batch norm takes the 16-bit activation as it is with its F32 parameters and statistics
//     (as cuDNN does), and returns a 16-bit result;
//   - pooling, the option-A shortcut and the pointwise family run in their input's type; a binary
//     pointwise op whose operands differ in float type computes in the wider one (type promotion).
// F64 tensors are never cast (PyTorch's autocast leaves float64 alone). Casts are differentiable:
// the gradient goes back to the F32 master weight in F32. A weight (leaf) is cast once per scope and
// the cast reused by every later use in it; the graph keeps what backward needs, so the backward pass
// (run after the scope ends, as PyTorch recommends) reuses the forward's casts and never casts again.
// Scopes are per thread and nest; Begin(dtype, enabled: false) turns autocast off inside another.
// Keep optimizer steps outside the scope: a weight updated in place inside it keeps its stale cast.
namespace ResidualEngine;

public sealed class Autocast : IDisposable
{
    [ThreadStatic] private static Autocast? t_current;

    private readonly Autocast? _parent;
    private readonly Dictionary<Tensor, (Storage Storage, Tensor Cast)> _cache = new(ReferenceEqualityComparer.Instance);
    private readonly List<Tensor> _owned = new();
    private bool _disposed;

    private Autocast(DType dtype, bool enabled)
    {
        DType = dtype;
        Enabled = enabled;
        _parent = t_current;
        t_current = this;
    }

    /// <summary>Starts an autocast scope on this thread: BF16 or F16 (the lower-precision type of matrix products).</summary>
    public static Autocast Begin(DType dtype, bool enabled = true)
    {
        if (!dtype.Is16Bit()) throw new ArgumentException($"Autocast: the autocast type must be BF16 or F16, got {dtype}", nameof(dtype));
        return new Autocast(dtype, enabled);
    }

    /// <summary>The lower-precision type of this scope.</summary>
    public DType DType { get; }
    public bool Enabled { get; }

    /// <summary>The innermost enabled scope on this thread, or null (no scope, or autocast turned off).</summary>
    public static Autocast? Current => t_current is { Enabled: true } a ? a : null;

    /// <summary>Number of weight casts made in this scope (each weight at most once; for tests).</summary>
    public int CastCount => _cache.Count;

    /// <summary>The current scope when a lower-precision op with these inputs must cast something first, else null
    /// (so the op runs as called). Inputs in F64 or not float are never cast.</summary>
    internal static Autocast? Active(params Tensor?[] inputs)
    {
        var a = Current;
        if (a is null) return null;
        foreach (var t in inputs)
            if (t is not null && Eligible(t) && t.DType != a.DType) return a;
        return null;
    }

    private static bool Eligible(Tensor t) => t.DType is DType.F32 or DType.BF16 or DType.F16;

    /// <summary>An activation in the autocast type: a new handle the caller owns (x itself, aliased, when no cast is needed).</summary>
    internal Tensor Input(Tensor x) => !Eligible(x) || x.DType == DType ? x.Alias() : Ops.Cast(x, DType);

    /// <summary>A weight or bias in the autocast type, owned by this scope (do not dispose it). A leaf is cast once
    /// per scope and the cast reused; anything else is cast each time.</summary>
    internal Tensor Weight(Tensor w)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!Eligible(w) || w.DType == DType) return w;
        if (w.IsLeaf && _cache.TryGetValue(w, out var hit) && ReferenceEquals(hit.Storage, w.Storage)) return hit.Cast;
        var c = TensorScope.Detach(Ops.Cast(w, DType));
        _owned.Add(c);
        if (w.IsLeaf) _cache[w] = (w.Storage, c);
        return c;
    }

    /// <summary>A 16-bit tensor widened to F32 for an op of the "fp32" list: a new handle the caller owns.</summary>
    internal static Tensor ToF32(Tensor x) => x.DType.Is16Bit() ? Ops.Cast(x, DType.F32) : x.Alias();

    /// <summary>For a binary op: both operands in the wider of their float types (F32 over BF16/F16). Null when they
    /// already agree or no scope is active; else two new handles the caller owns.</summary>
    internal static (Tensor A, Tensor B)? Promote(Tensor a, Tensor b)
    {
        if (Current is null || a.DType == b.DType || !Eligible(a) || !Eligible(b)) return null;
        // Two different eligible types: one is F32, or they are BF16 and F16 (which promote to F32 too).
        return (a.DType == DType.F32 ? a.Alias() : Ops.Cast(a, DType.F32), b.DType == DType.F32 ? b.Alias() : Ops.Cast(b, DType.F32));
    }

    /// <summary>Ends the scope and frees its casts (the autograd graph keeps what a backward pass needs).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        if (!ReferenceEquals(t_current, this))
            throw new InvalidOperationException("Autocast scope disposed out of order: inner scopes must end first (use `using`)");
        _disposed = true;
        foreach (var t in _owned) t.Dispose();
        _owned.Clear();
        _cache.Clear();
        t_current = _parent;
    }
}
