// The data of the experiments: an ImageFolder given with --data (root/train + root/val, or one
// folder split deterministically), or by default the project's synthetic ImageNet-style images
// rendered at the experiment's size (cached on disk and reused). Every model of an experiment
// reads the same samples in the same order: the loaders are seeded by the experiment's seed.
// Images go through He et al.'s small-image augmentation (CifarTransform: pad 4 + random crop +
// flip; smaller images, e.g. 28x28 Fashion-MNIST, zero-padded to the size), normalised by the
// per-channel mean and standard deviation of the training images (estimated on up to 2,000 of
// them). The test error during training may be measured on a fixed, evenly spaced subset of the
// validation split (the split is ordered by class, so every class is represented).
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
    /// <summary>cifar (4-pixel padding + random crop + flip, He et al.'s recipe), flip, or none.</summary>
    public string Augment { get; init; } = "cifar";
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
            Augment = a.Choice("augment", defaults.Augment, "cifar", "crop-flip", "flip", "none") switch { "crop-flip" => "cifar", var v => v },
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
        Normalization = Estimate(train, trainIndices, spec.ImageSize);
        _train = train;
        _val = val;
        _trainIndices = trainIndices;
        _valIndices = valIndices;
    }

    public DataSpec Spec { get; }
    /// <summary>Per-channel mean and std of the training images (0..1 pixel units), as the loaders normalise.</summary>
    public Normalization Normalization { get; }
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
        // cifar pads 4 and crops; flip is the same with no padding (only the flip is random).
        var t = new CifarTransform(Spec.ImageSize, train: Spec.Augment != "none", Normalization, padding: Spec.Augment == "cifar" ? 4 : 0);
        if (TrainCount < batchSize) throw new ArgumentException($"--batch-size {batchSize} is larger than the {TrainCount} training images");
        return new DataLoader(Dataset(_train, _trainIndices, t), new DataLoaderOptions(batchSize, Shuffle: true, Seed: seed, Workers: Spec.Workers, DropLast: true));
    }

    /// <summary>The validation images in a fixed order; <paramref name="maxImages"/> &gt; 0 takes that many, evenly spaced.</summary>
    public DataLoader ValLoader(int batchSize, int maxImages = 0)
    {
        var indices = _valIndices ?? Enumerable.Range(0, _val.Count).ToArray();
        if (maxImages > 0 && maxImages < indices.Length)
            indices = Enumerable.Range(0, maxImages).Select(i => indices[(int)((long)i * indices.Length / maxImages)]).ToArray();
        return new(Dataset(_val, indices, new CifarTransform(Spec.ImageSize, train: false, Normalization)),
            new DataLoaderOptions(batchSize, Shuffle: false, Seed: 0, Workers: Spec.Workers));
    }

    /// <summary>Mean and std per channel over up to 2,000 evenly spaced training images, in the evaluation view.</summary>
    private static Normalization Estimate(ImageFolder folder, int[]? indices, int size)
    {
        var idx = indices ?? Enumerable.Range(0, folder.Count).ToArray();
        int n = Math.Min(2000, idx.Length);
        var ds = new ImageFolderDataset(folder, new CifarTransform(size, train: false, Normalization.None));
        var sum = new double[3];
        var sq = new double[3];
        long count = 0;
        var buf = new float[3 * size * size];
        for (int i = 0; i < n; i++)
        {
            try { ds.GetInto(idx[(int)((long)i * idx.Length / n)], new Random(0), buf); }
            catch (SampleLoadException) { continue; }
            int plane = size * size;
            for (int c = 0; c < 3; c++)
                for (int k = 0; k < plane; k++)
                {
                    double v = buf[c * plane + k];
                    sum[c] += v;
                    sq[c] += v * v;
                }
            count += plane;
        }
        if (count == 0) return Normalization.Cifar10;
        float M(int c) => (float)(sum[c] / count);
        float S(int c) => (float)Math.Max(1e-3, Math.Sqrt(Math.Max(0, sq[c] / count - (sum[c] / count) * (sum[c] / count))));
        return new Normalization(M(0), M(1), M(2), S(0), S(1), S(2));
    }

    private static IDataset Dataset(ImageFolder folder, int[]? indices, CifarTransform t)
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
