// What a run is built from, shared by `residual train` and `residual eval`: the device (auto =
// CUDA when the backend reports a device), the data (an ImageFolder root, or the synthetic set
// generated on first use), the transforms at the chosen crop size, the loaders, and the model
// (a zoo name, with a clear error listing the zoo when the name is unknown).
using ResidualEngine.Backends;
using ResidualEngine.Backends.Cuda;
using ResidualEngine.Data;
using ResidualEngine.Models;
using ResidualEngine.Nn;

namespace ResidualEngine.Training;

public static class TrainingSetup
{
    /// <summary>Resolves --device: "cpu", "cuda", "cuda:N", or "auto" (a CUDA device when one answers, else the CPU).</summary>
    public static Device ResolveDevice(string option)
    {
        ArgumentNullException.ThrowIfNull(option);
        if (option == "auto") return CudaAvailable(0, out _) ? Device.Cuda(0) : Device.Cpu;
        var d = Device.Parse(option);
        if (d.IsCuda && !CudaAvailable(d.Index, out var why))
            throw new ArgumentException($"option --device {option}: no usable CUDA device ({why}); use --device cpu or auto");
        return d;
    }

    /// <summary>True when the CUDA backend reports a device and a tensor can be made on device <paramref name="index"/>.</summary>
    public static bool CudaAvailable(int index, out string reason)
    {
        if (!CudaBackend.IsAvailable(out reason)) return false;
        try
        {
            BackendRegistry.Get(Device.Cuda(index));
            using var probe = TensorScope.Detach(Tensor.Zeros(new Shape(1), DType.F32, Device.Cuda(index)));
            reason = "";
            return true;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            reason = e.Message;
            return false;
        }
    }

    /// <summary>The zoo's canonical spelling of a model name; an unknown name gets an error that lists the zoo.</summary>
    public static string CanonicalModel(string name)
    {
        try
        {
            return ModelZoo.Canonical(name);
        }
        catch (ArgumentException e)
        {
            var why = e.Message.Split(" (Parameter", 2)[0].TrimEnd('.');
            throw new ArgumentException(why.Contains("known models", StringComparison.Ordinal)
                ? $"option --model: {why}"
                : $"option --model: {why} All models: {string.Join(", ", ModelZoo.Names)} (see `residual models`)");
        }
    }

    public static ResNet CreateModel(string name, int numClasses, int seed, double dropPath = 0)
    {
        var cfg = ModelZoo.Config(CanonicalModel(name));
        if (numClasses < 1) throw new ArgumentException($"number of classes must be positive, got {numClasses}", nameof(numClasses));
        if (dropPath > 0 && cfg.Plain) throw new ArgumentException($"option --drop-path: {name} is a plain network; stochastic depth needs shortcuts");
        return new ResNet(cfg with { NumClasses = numClasses, DropPathRate = dropPath }, seed);
    }

    /// <summary>The optimizer --opt names (sgd, adamw, lars) over the model's parameters, with the options' hyper-parameters.</summary>
    public static Nn.Optim.IOptimizer CreateOptimizer(Module model, TrainOptions o)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(o);
        return o.Optimizer switch
        {
            "sgd" => Nn.Optim.Sgd.ForModule(model, o.Lr, o.Momentum, o.WeightDecay, o.Nesterov, o.NoBnWeightDecay),
            "adamw" => Nn.Optim.AdamW.ForModule(model, o.Lr, o.WeightDecay, o.OptBetas[0], o.OptBetas[1], o.OptEps, o.NoBnWeightDecay),
            "lars" => Nn.Optim.Lars.ForModule(model, o.Lr, o.Momentum, o.WeightDecay, o.LarsEta, o.Nesterov),
            _ => throw new ArgumentException($"option --opt must be sgd, adamw or lars, got '{o.Optimizer}'"),
        };
    }

    /// <summary>The crop size fed to the network: the option, or the model's native size (capped by synthetic images).</summary>
    public static int ResolveImageSize(int option, string model, int? dataSize)
    {
        if (option > 0) return option;
        int native = ModelZoo.Config(model).NativeImageSize;
        return dataSize is { } s ? Math.Min(native, s) : native;
    }

    /// <summary>The data root: --data as given, or the synthetic set (generated now unless already there).</summary>
    public static string EnsureData(TrainOptions o, TextWriter log, string syntheticRoot = "data", CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(log);
        if (o.Data is not null) return o.Data;
        var dir = o.SyntheticDir(syntheticRoot);
        var spec = new SyntheticImageNet.Options(o.SynthClasses, o.SynthTrainPerClass, o.SynthValPerClass, o.SynthSize, o.SynthSeed);
        if (!SyntheticImageNet.IsComplete(dir, spec))
            log.WriteLine($"data: generating a synthetic ImageNet-style set in {dir} ({o.SynthClasses} classes, {o.SynthTrainPerClass} train + {o.SynthValPerClass} val images per class)...");
        var r = SyntheticImageNet.Generate(dir, spec, null, cancel);
        log.WriteLine(r.Reused
            ? $"data: using synthetic set {dir}"
            : $"data: generated a synthetic ImageNet-style set in {dir} ({o.SynthClasses} classes, {o.SynthTrainPerClass} train + {o.SynthValPerClass} val images per class, {o.SynthSize} px) in {r.Elapsed.TotalSeconds:F1} s");
        return dir;
    }

    /// <summary>The val/ folder of a data root (or the root itself when it holds class folders directly).</summary>
    public static ImageFolder OpenVal(string root, CancellationToken cancel = default)
    {
        var val = Path.Combine(root, "val");
        return ImageFolder.Open(Directory.Exists(val) ? val : root, null, cancel);
    }

    /// <summary>Training samples: <paramref name="augment"/> "imagenet" (RandomResizedCrop + flip) or "cifar" (pad 4 + random crop + flip),
    /// then <paramref name="sampleAugment"/> (auto-augment, random erasing) when given.</summary>
    public static IDataset TrainDataset(ImageFolder folder, int size, double minScale, long maxPixels = EncodedImage.DefaultMaxPixels, string augment = "imagenet",
        SampleAugment? sampleAugment = null) =>
        new ImageFolderDataset(folder, augment == "cifar"
            ? new CifarTransform(size, train: true, Normalization.ImageNet) { Augment = sampleAugment }
            : new TrainTransform(size, Normalization.ImageNet) { ScaleMin = minScale, Augment = sampleAugment }) { MaxPixels = maxPixels };

    /// <summary>The per-image augmentation the options ask for (--auto-augment, --random-erase), or null.</summary>
    public static SampleAugment? SampleAugmentation(TrainOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        return SampleAugment.Create(o.AutoAugment, o.RandomErase, o.RaNumOps, o.RaMagnitude);
    }

    /// <summary>The per-batch augmentation the options ask for (--mixup-alpha, --cutmix-alpha), or null.</summary>
    public static IBatchAugmentation? BatchAugmentation(TrainOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        return o.MixupAlpha > 0 || o.CutmixAlpha > 0 ? new MixupCutmix(o.MixupAlpha, o.CutmixAlpha) : null;
    }

    /// <summary>Evaluation samples, the view that matches <paramref name="augment"/>: resize + centre crop, or the small-image centre view.</summary>
    public static IDataset EvalDataset(ImageFolder folder, int size, long maxPixels = EncodedImage.DefaultMaxPixels, string augment = "imagenet") =>
        new ImageFolderDataset(folder, augment == "cifar"
            ? new CifarTransform(size, train: false, Normalization.ImageNet)
            : new EvalTransform(size, Normalization.ImageNet)) { MaxPixels = maxPixels };

    /// <summary>A loader as runs use it: training shuffles and drops the last partial batch; <paramref name="sampler"/> picks this process's share;
    /// <paramref name="format"/> channels-last lays each batch out as NHWC on its worker, once.</summary>
    public static DataLoader Loader(IDataset data, int batchSize, bool train, int seed, int workers, Device device, IBatchAugmentation? batchAugmentation = null,
        ISampler? sampler = null, MemoryFormat format = MemoryFormat.Contiguous) =>
        new(data, new DataLoaderOptions(batchSize, Shuffle: train, Seed: seed, Workers: workers, Prefetch: Math.Max(2, 2 * workers),
            DropLast: train && (sampler?.Count ?? data.Count) >= batchSize, Device: device) { BatchAugmentation = batchAugmentation, Sampler = sampler, Format = format });

    /// <summary>A shuffled training loader over an ImageFolder (one sub-folder per class): RandomResizedCrop
    /// to <paramref name="imageSize"/> (smallest area <paramref name="minCropScale"/>) and flips, ImageNet normalisation.</summary>
    public static DataLoader TrainLoader(string folder, int imageSize, int batchSize, int seed = 1, int workers = 2, double minCropScale = 0.08, Device? device = null) =>
        Loader(TrainDataset(ImageFolder.Open(folder), imageSize, minCropScale), batchSize, train: true, seed, workers, device ?? Device.Cpu);

    /// <summary>An evaluation loader over an ImageFolder: resize to imageSize * 256/224, centre crop, ImageNet normalisation, fixed order.</summary>
    public static DataLoader ValLoader(string folder, int imageSize, int batchSize, int workers = 2, Device? device = null) =>
        Loader(EvalDataset(ImageFolder.Open(folder), imageSize), batchSize, train: false, 0, workers, device ?? Device.Cpu);

    /// <summary>The normalisation every loader here applies (torchvision's ImageNet mean and std).</summary>
    public static Normalization InputNormalization => Normalization.ImageNet;

    /// <summary>What a weights file written by a run records about its model (see <see cref="ModelMetadata"/>).</summary>
    public static ModelMetadata Metadata(string model, IReadOnlyList<string> classes, int imageSize) => new()
    {
        Model = model,
        NumClasses = classes.Count,
        Classes = classes,
        ImageSize = imageSize,
        Mean = ModelMetadata.ImageNetMean,
        Std = ModelMetadata.ImageNetStd,
    };

    /// <summary>The normalisation a file's metadata records, as a transform's.</summary>
    public static Normalization NormalizationOf(ModelMetadata m)
    {
        ArgumentNullException.ThrowIfNull(m);
        return new((float)m.Mean[0], (float)m.Mean[1], (float)m.Mean[2], (float)m.Std[0], (float)m.Std[1], (float)m.Std[2]);
    }

    /// <summary>Checks that train and val list the same classes (the labels would not line up otherwise).</summary>
    public static void CheckSameClasses(IReadOnlyList<string> train, IReadOnlyList<string> val, string what)
    {
        if (train.SequenceEqual(val, StringComparer.Ordinal)) return;
        var missing = train.Except(val, StringComparer.Ordinal).Take(5).ToList();
        var extra = val.Except(train, StringComparer.Ordinal).Take(5).ToList();
        throw new ArgumentException($"{what}: the class folders differ ({train.Count} vs {val.Count} classes" +
            (missing.Count > 0 ? $"; missing: {string.Join(", ", missing)}" : "") +
            (extra.Count > 0 ? $"; unexpected: {string.Join(", ", extra)}" : "") + ")");
    }

    /// <summary>Prepares a model for a precision and layout: the TF32 policy on its device's backend, and channels-last
    /// when asked (the parameters stay F32: under autocast they are the master weights).</summary>
    public static void ApplyPrecision(Module model, Device device, PrecisionMode precision, bool channelsLast)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(precision);
        precision.ApplyTo(device);
        if (channelsLast) model.To(MemoryFormat.ChannelsLast);
    }

    /// <summary>Model tensors, optimizer state under "optimizer." and the moving average under "model_ema.", in a stable order, for a checkpoint.</summary>
    public static List<KeyValuePair<string, Tensor>> CheckpointTensors(Module model, Nn.Optim.IOptimizer? optimizer, ModelEma? ema = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var list = model.StateDict().Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value)).ToList();
        if (optimizer is not null)
            foreach (var (name, t) in optimizer.StateTensors())
                list.Add(new(CheckpointStore.OptimizerPrefix + name, t));
        if (ema is not null)
            foreach (var (name, t) in ema.StateTensors())
                list.Add(new(CheckpointStore.EmaPrefix + name, t));
        return list;
    }
}
