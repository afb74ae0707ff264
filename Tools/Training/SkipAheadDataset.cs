// Resuming in the middle of an epoch must see exactly the batches an uninterrupted run would
// have seen after the stop point, so the first resumed epoch walks the same sample order from
// its start. Decoding the batches already trained on would cost as much as training them on a
// large data set, so this wrapper answers those positions with blank images instead: the
// loader's order is a pure function of (seed, epoch) and each sample's random generator of
// (seed, epoch, position), so the samples after the stop point are unchanged.
using ResidualEngine.Data;

namespace ResidualEngine.Training;

internal sealed class SkipAheadDataset : IDirectDataset
{
    private readonly IDataset _inner;
    private readonly HashSet<int> _skip;

    /// <param name="skipped">Dataset indices whose samples are not needed (the epoch's first positions).</param>
    public SkipAheadDataset(IDataset inner, IEnumerable<int> skipped)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(skipped);
        if (inner is not IDirectDataset)
            throw new ArgumentException($"SkipAheadDataset: {inner.GetType().Name} does not have a fixed sample size", nameof(inner));
        _inner = inner;
        _skip = new HashSet<int>(skipped);
    }

    public int Count => _inner.Count;
    public int NumClasses => _inner.NumClasses;
    public IReadOnlyList<string> Classes => _inner.Classes;
    public int SampleSize => ((IDirectDataset)_inner).SampleSize;

    public Sample Get(int index, Random rng)
    {
        int s = SampleSize;
        var data = new float[3 * s * s];
        int label = GetInto(index, rng, data);
        return new Sample(data, label, s, s);
    }

    public int GetInto(int index, Random rng, Span<float> destination)
    {
        if (!_skip.Contains(index)) return ((IDirectDataset)_inner).GetInto(index, rng, destination);
        destination.Clear();
        return 0;
    }

    /// <summary>The dataset indices of the first <paramref name="batches"/> batches of an epoch.</summary>
    public static IEnumerable<int> FirstBatches(DataLoader loader, int epoch, int batches)
    {
        ArgumentNullException.ThrowIfNull(loader);
        var order = loader.SampleOrder(epoch);
        return order.Take(Math.Min(order.Length, batches * loader.Options.BatchSize));
    }
}
