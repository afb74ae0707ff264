// The data of the experiments: an ImageFolder given with --data (root/train + root/val, or one
// folder split deterministically), or by default the project's synthetic ImageNet-style images
// rendered at the experiment's size (cached on disk and reused). Every model of an experiment
// reads the same samples in the same order: the loaders are seeded by the experiment's seed.
using ResidualEngine.Data;
using ResidualEngine.Tools.Cli;

namespace ResidualEngine.Tools.Experiments;

public sealed record DataSpec
{
    /// <summary>An ImageFolder root; null = synthetic data.</summary>
    public string? Folder { get; init; }
    public int Classes { get; init; } = 10;
    public int TrainPerClass { get; init; } = 250;
    public int ValPerClass { get; init; } = 50;
    public int ImageSize { get; init; } = 32;
    /// <summary>none, flip, or crop-flip (4-pixel padding + random crop + flip, the CIFAR recipe).</summary>
    public string Augment { get; init; } = "flip";
    public int Workers { get; init; } = 1;
    /// <summary>Where synthetic data is written (default: a folder under the system temp directory named by its parameters).</summary>
    public string? Cache { get; init; }

    public static DataSpec Parse(Args a, DataSpec defaults)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(defaults);
        return defaults with
        {
            Folder = a.String("data") ?? defaults.Folder,
            Classes = a.Int("classes", defaults.Classes, 2, 10000),
            TrainPerClass = a.Int("train-per-class", defaults.TrainPerClass, 1, 1_000_000),
            ValPerClass = a.Int("val-per-class", defaults.ValPerClass, 1, 1_000_000),
            ImageSize = a.Int("image-size", defaults.ImageSize, 8, 1024),
            Augment = a.Choice("augment", defaults.Augment, "none", "flip", "crop-flip"),
            Workers = a.Int("workers", defaults.Workers, 0, 64),
            Cache = a.String("data-cache") ?? defaults.Cache,
        };
    }

    public string Describe() => Folder is null
        ? $"synthetic ImageNet-style images, {Classes} classes, {TrainPerClass} train + {ValPerClass} val per class, {ImageSize}x{ImageSize}, augmentation {Augment}"
        : $"ImageFolder {Folder} at {ImageSize}x{ImageSize}, augmentation {Augment}";
}

/// <summary>Train and validation splits opened for an experiment.</summary>
public sealed class ExperimentData
{
    private readonly ImageFolder _train, _val;
    private readonly int[]? _trainIndices, _valIndices;   // a split of one folder; null = the whole folder

    private ExperimentData(DataSpec spec, ImageFolder train, int[]? trainIndices, ImageFolder val, int[]? valIndices)
    {
        Spec = spec;
        _train = train;
        _val = val;
        _trainIndices = trainIndices;
        _valIndices = valIndices;
    }

    public DataSpec Spec { get; }
    public int NumClasses => _train.Classes.Count;
    public int TrainCount => _trainIndices?.Length ?? _train.Count;
    public int ValCount => _valIndices?.Length ?? _val.Count;

    /// <summary>Every tenth image of each class of a single ImageFolder goes to validation (at least one per class).</summary>
    public const int HoldOutEvery = 10;

    public static ExperimentData Open(DataSpec spec, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Folder is { } folder)
        {
            if (!Directory.Exists(folder)) throw new ArgumentException($"--data directory '{folder}' does not exist");
            if (Directory.Exists(Path.Combine(folder, "train")))
            {
                var (t, v) = ImageFolder.OpenSplits(folder);
                return new ExperimentData(spec, t, null, v, null);
            }
            var all = ImageFolder.Open(folder);
            var (trainIdx, valIdx) = Split(all.Samples.Select(e => e.Label).ToArray());
            log?.Invoke($"{folder} has no train/ and val/: holding out every {HoldOutEvery}th image of each class for validation");
            return new ExperimentData(spec, all, trainIdx, all, valIdx);
        }
        var root = spec.Cache ?? Path.Combine(Path.GetTempPath(),
            $"residual-synthetic-{spec.Classes}c-{spec.TrainPerClass}+{spec.ValPerClass}-{spec.ImageSize}px");
        var r = SyntheticImageNet.Generate(root, new SyntheticImageNet.Options(spec.Classes, spec.TrainPerClass, spec.ValPerClass, spec.ImageSize, Seed: 0), log);
        var (train, val) = ImageFolder.OpenSplits(r.Root);
        return new ExperimentData(spec, train, null, val, null);
    }

    /// <summary>Deterministic per-class hold-out: the k-th image of a class is validation when k % HoldOutEvery == HoldOutEvery - 1,
    /// and a class with fewer images gives its last one.</summary>
    public static (int[] Train, int[] Val) Split(IReadOnlyList<int> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        var train = new List<int>();
        var val = new List<int>();
        foreach (var group in Enumerable.Range(0, labels.Count).GroupBy(i => labels[i]))
        {
            var idx = group.ToList();
            var held = idx.Where((_, k) => k % HoldOutEvery == HoldOutEvery - 1).ToList();
            if (held.Count == 0 && idx.Count > 1) held.Add(idx[^1]);
            val.AddRange(held);
            train.AddRange(idx.Except(held));
        }
        train.Sort();
        val.Sort();
        if (val.Count == 0) throw new ArgumentException("the data folder is too small to hold out validation images (need 2 images in a class)");
        return (train.ToArray(), val.ToArray());
    }

    /// <summary>A seeded, shuffled loader of full training batches (the same order for every model with the same seed).</summary>
    public DataLoader TrainLoader(int batchSize, int seed)
    {
        // CIFAR transform: crop-flip pads 4 and crops; flip is the same with no padding (only the flip is random).
        var t = new CifarTransform(Spec.ImageSize, train: Spec.Augment != "none", padding: Spec.Augment == "crop-flip" ? 4 : 0);
        if (TrainCount < batchSize) throw new ArgumentException($"--batch-size {batchSize} is larger than the {TrainCount} training images");
        return new DataLoader(Dataset(_train, _trainIndices, t), new DataLoaderOptions(batchSize, Shuffle: true, Seed: seed, Workers: Spec.Workers, DropLast: true));
    }

    public DataLoader ValLoader(int batchSize) =>
        new(Dataset(_val, _valIndices, new CifarTransform(Spec.ImageSize, train: false)),
            new DataLoaderOptions(batchSize, Shuffle: false, Seed: 0, Workers: Spec.Workers));

    private static IDataset Dataset(ImageFolder folder, int[]? indices, ITransform t)
    {
        var ds = new ImageFolderDataset(folder, t);
        return indices is null ? ds : new Subset(ds, indices);
    }

    /// <summary>Some samples of a dataset, by index.</summary>
    private sealed class Subset(IDataset inner, int[] indices) : IDataset
    {
        public int Count => indices.Length;
        public int NumClasses => inner.NumClasses;
        public IReadOnlyList<string> Classes => inner.Classes;
        public Sample Get(int index, Random rng) => inner.Get(indices[index], rng);
    }
}
