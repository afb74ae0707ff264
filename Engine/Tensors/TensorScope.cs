// A thread-local, nestable owner of tensors. Every tensor created while a scope is current
// belongs to it and is disposed when the scope ends, unless it escaped with Keep (which
// hands it to the enclosing scope, or to nobody at top level). Scopes end in LIFO order.
namespace ResidualEngine;

public sealed class TensorScope : IDisposable
{
    [ThreadStatic] private static TensorScope? t_current;

    private readonly TensorScope? _parent;
    private readonly List<Tensor> _owned = new();
    private bool _disposed;

    private TensorScope()
    {
        _parent = t_current;
        t_current = this;
    }

    /// <summary>Starts a scope on this thread; dispose it (with `using`) to free what it collected.</summary>
    public static TensorScope Begin() => new();

    /// <summary>The innermost scope on this thread, or null.</summary>
    public static TensorScope? Current => t_current;

    internal static void Register(Tensor t)
    {
        var s = t_current;
        if (s is null) return;
        t.Scope = s;
        s._owned.Add(t);
    }

    /// <summary>Lets a tensor outlive this scope: it moves to the enclosing scope, or to no scope (the caller owns it).</summary>
    public Tensor Keep(Tensor t)
    {
        ArgumentNullException.ThrowIfNull(t);
        if (!ReferenceEquals(t.Scope, this)) return t;
        t.Scope = _parent;
        _parent?._owned.Add(t);
        return t;
    }

    /// <summary>Removes a tensor from whatever scope holds it: the caller owns it from now on.</summary>
    public static Tensor Detach(Tensor t)
    {
        ArgumentNullException.ThrowIfNull(t);
        t.Scope = null;
        return t;
    }

    /// <summary>Number of tensors this scope still owns (for tests and diagnostics).</summary>
    public int OwnedCount => _owned.Count(t => ReferenceEquals(t.Scope, this) && !t.IsDisposed);

    public void Dispose()
    {
        if (_disposed) return;
        if (!ReferenceEquals(t_current, this))
            throw new InvalidOperationException("TensorScope disposed out of order: inner scopes must end first (use `using`)");
        _disposed = true;
        for (int i = _owned.Count - 1; i >= 0; i--)
        {
            var t = _owned[i];
            if (ReferenceEquals(t.Scope, this)) t.Dispose();
        }
        _owned.Clear();
        t_current = _parent;
    }
}
