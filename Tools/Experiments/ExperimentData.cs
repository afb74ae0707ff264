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
    private ExperimentData(ImageFolder train, ImageFolder val, DataSpec spec)
    {
        Train = train;
        Val = val;
        Spec = spec;
    }

    public ImageFolder Train { get; }
    public ImageFolder Val { get; }
    public DataSpec Spec { get; }
    public int NumClasses => Train.Classes.Count;

    public static ExperimentData Open(DataSpec spec, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Folder is { } folder)
        {
            if (!Directory.Exists(folder)) throw new ArgumentException($"--data directory '{folder}' does not exist");
            if (Directory.Exists(Path.Combine(folder, "train")))
            {
                var (t, v) = ImageFolder.OpenSplits(folder);
                return new ExperimentData(t, v, spec);
            }
            throw new ArgumentException($"--data '{folder}' needs train/ and val/ sub-folders (each an ImageFolder of class folders)");
        }
        var root = spec.Cache ?? Path.Combine(Path.GetTempPath(),
            $"residual-synthetic-{spec.Classes}c-{spec.TrainPerClass}+{spec.ValPerClass}-{spec.ImageSize}px");
        var r = SyntheticImageNet.Generate(root, new SyntheticImageNet.Options(spec.Classes, spec.TrainPerClass, spec.ValPerClass, spec.ImageSize, Seed: 0), log);
        var (train, val) = ImageFolder.OpenSplits(r.Root);
        return new ExperimentData(train, val, spec);
    }

    /// <summary>A seeded, shuffled loader of full training batches (the same order for every model with the same seed).</summary>
    public DataLoader TrainLoader(int batchSize, int seed)
    {
        // CIFAR transform: crop-flip pads 4 and crops; flip is the same with no padding (only the flip is random).
        var t = new CifarTransform(Spec.ImageSize, train: Spec.Augment != "none", padding: Spec.Augment == "crop-flip" ? 4 : 0);
        if (Train.Count < batchSize) throw new ArgumentException($"--batch-size {batchSize} is larger than the {Train.Count} training images");
        return new DataLoader(new ImageFolderDataset(Train, t), new DataLoaderOptions(batchSize, Shuffle: true, Seed: seed, Workers: Spec.Workers, DropLast: true));
    }

    public DataLoader ValLoader(int batchSize) =>
        new(new ImageFolderDataset(Val, new CifarTransform(Spec.ImageSize, train: false)), new DataLoaderOptions(batchSize, Shuffle: false, Seed: 0, Workers: Spec.Workers));
}
