// Whether operations record autograd nodes on this thread. `using (GradMode.NoGrad())`
// turns recording off for evaluation and for the optimizer's in-place updates.
namespace ResidualEngine.Autograd;

public static class GradMode
{
    [ThreadStatic] private static int t_disabledDepth;

    public static bool IsEnabled => t_disabledDepth == 0;

    public static IDisposable NoGrad()
    {
        t_disabledDepth++;
        return new Restore();
    }

    /// <summary>True when an op on these inputs must record a node.</summary>
    public static bool ShouldRecord(Tensor? a, Tensor? b = null, Tensor? c = null) =>
        IsEnabled && ((a?.RequiresGrad ?? false) || (b?.RequiresGrad ?? false) || (c?.RequiresGrad ?? false));

    public static bool ShouldRecord(ReadOnlySpan<Tensor?> inputs)
    {
        if (!IsEnabled) return false;
        foreach (var t in inputs) if (t?.RequiresGrad ?? false) return true;
        return false;
    }

    private sealed class Restore : IDisposable
    {
        private bool _done;
        public void Dispose()
        {
            if (_done) return;
            _done = true;
            t_disabledDepth--;
        }
    }
}
