// Which samples a loader visits in an epoch, and in what order. Without a sampler a DataLoader
// visits the whole dataset (shuffled or not). A DistributedSampler gives each of several
// processes its own share of the same epoch, with torch.utils.data.DistributedSampler's rules:
//   - the epoch's order is one permutation of the whole dataset, a function of (seed, epoch) only
//     (the very permutation a single-process loader uses), so every rank agrees on it;
//   - padded (the default, for training): the order is extended by repeating its start until its
//     length divides by the number of ranks, then rank r takes positions r, r+R, r+2R, ... - every
//     rank gets the same number of samples, every sample is seen at least once per epoch and the
//     padding (fewer than R samples) is seen twice;
//   - not padded (evaluation): the same strided shares without repetition, so every sample
//     counts exactly once and the first n mod R ranks get one sample more.
// Each sample's random augmentation is seeded by its position in the global order (rank + i R),
// so a sample is cropped the same way whether one process or eight share the epoch, and
// consecutive global batches of B x R samples are the same samples as a single process's
// batches of B x R.
namespace ResidualEngine.Data;

public interface ISampler
{
    /// <summary>Size of the dataset the sampler was made for.</summary>
    int DatasetCount { get; }

    /// <summary>Samples this process visits per epoch.</summary>
    int Count { get; }

    /// <summary>Dataset indices in the order this process visits them in <paramref name="epoch"/> (<see cref="Count"/> of them).</summary>
    int[] Indices(int epoch);

    /// <summary>The position of this process's <paramref name="i"/>-th sample in the epoch's global order (seeds its augmentation).</summary>
    int GlobalPosition(int i);
}

public sealed class DistributedSampler : ISampler
{
    /// <param name="datasetCount">Samples in the dataset.</param>
    /// <param name="rank">This process, 0..<paramref name="worldSize"/>-1.</param>
    /// <param name="worldSize">Processes sharing each epoch.</param>
    /// <param name="shuffle">A new permutation every epoch (seeded by <paramref name="seed"/> and the epoch), else dataset order.</param>
    /// <param name="pad">Repeat the first samples so that every rank gets as many (training); false: every sample exactly once (evaluation).</param>
    public DistributedSampler(int datasetCount, int rank, int worldSize, bool shuffle, int seed, bool pad = true)
    {
        if (datasetCount < 1) throw new ArgumentException($"DistributedSampler: the dataset is empty", nameof(datasetCount));
        if (worldSize < 1) throw new ArgumentOutOfRangeException(nameof(worldSize), worldSize, "DistributedSampler: the world size must be at least 1");
        if (rank < 0 || rank >= worldSize) throw new ArgumentOutOfRangeException(nameof(rank), rank, $"DistributedSampler: rank must be in 0..{worldSize - 1}");
        DatasetCount = datasetCount;
        Rank = rank;
        WorldSize = worldSize;
        Shuffle = shuffle;
        Seed = seed;
        Pad = pad;
        Count = pad ? (datasetCount + worldSize - 1) / worldSize : (datasetCount - rank + worldSize - 1) / worldSize;
    }

    public int DatasetCount { get; }
    public int Rank { get; }
    public int WorldSize { get; }
    public bool Shuffle { get; }
    public int Seed { get; }
    public bool Pad { get; }
    public int Count { get; }

    /// <summary>Length of the padded global order (a multiple of the world size); the dataset size without padding.</summary>
    public int TotalSize => Pad ? Count * WorldSize : DatasetCount;

    public int[] Indices(int epoch)
    {
        var order = DataLoader.Permutation(DatasetCount, Shuffle, Seed, epoch);
        var mine = new int[Count];
        for (int i = 0; i < mine.Length; i++) mine[i] = order[GlobalPosition(i) % DatasetCount];
        return mine;
    }

    public int GlobalPosition(int i) => Rank + i * WorldSize;
}
