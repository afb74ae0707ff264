// The table of every `residual train` option, in help order. Defaults live in TrainOptions'
// property initialisers and are read from there; ranges and help are written here once. The CLI
// builds its parser from this list, JSON config files are read through it, config.json is
// written from it, and TrainOptions.Validate runs each entry's check.
using System.Globalization;

namespace ResidualEngine.Training;

public static class TrainOptionTable
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static IReadOnlyList<TrainOption> All { get; } =
    [
        // ---- data ----
        Text("data", "data", "ImageFolder root with train/<class>/* and val/<class>/*; without it, synthetic data", "DIR", o => o.Data, (o, v) => o.Data = v,
            v => v.Length == 0 ? "is empty (an unset shell variable?); leave --data out to train on synthetic data" : null),
        Switch("synthetic", "data", "synthetic ImageNet-style data in ./data/synthetic-... (the default without --data)", o => o.Synthetic, (_, _) => { }),
        Int("synth-classes", "data", "classes of the synthetic data", o => o.SynthClasses, (o, v) => o.SynthClasses = v, 2, 1000),
        Int("synth-train-per-class", "data", "synthetic training images per class", o => o.SynthTrainPerClass, (o, v) => o.SynthTrainPerClass = v, 1),
        Int("synth-val-per-class", "data", "synthetic validation images per class", o => o.SynthValPerClass, (o, v) => o.SynthValPerClass = v, 1),
        Int("synth-size", "data", "side of the synthetic images in pixels", o => o.SynthSize, (o, v) => o.SynthSize = v, 8, 512),
        Int("synth-seed", "data", "seed of the synthetic images", o => o.SynthSeed, (o, v) => o.SynthSeed = v),
        Int("image-size", "data", "crop size fed to the network; 0 = the model's native size (224 ImageNet nets, 32 CIFAR nets), at most the synthetic image size",
            o => o.ImageSize, (o, v) => o.ImageSize = v, check: v => v != 0 && (v < 8 || v > 1024) ? $"must be 0 (model default) or in [8, 1024], got {v}" : null),
        Choice("augment", "data", "imagenet: RandomResizedCrop + flip, eval resize + centre crop; cifar: He et al.'s small-image recipe for 28-32 px images " +
            "(pad 4, random crop, flip; eval the centre view; smaller images zero-padded to the size)", o => o.Augment, (o, v) => o.Augment = v, ["imagenet", "cifar"]),
        Double("min-crop-scale", "data", "RandomResizedCrop's smallest area fraction; 0 = auto (0.08 with --data, 0.35 synthetic)",
            o => o.MinCropScale, (o, v) => o.MinCropScale = v, 0, 1, "must be in (0, 1] (or 0 for auto)"),
        Int("workers", "data", "decoding threads", o => o.Workers, (o, v) => o.Workers = v, 0, 256),
        new TrainOption<long>("max-image-pixels", "data", "images whose header claims more pixels are skipped as unreadable (default: PIL's limit, 178956970)", "N",
            o => o.MaxImagePixels, (o, v) => o.MaxImagePixels = v, s => long.Parse(s, NumberStyles.Integer, Inv), v => v < 1 ? $"must be at least 1, got {v}" : null),

        // ---- model and optimisation ----
        Text("model", "model", "any zoo name, see `residual models`", "NAME", o => o.Model, (o, v) => o.Model = v,
            v => string.IsNullOrWhiteSpace(v) ? "needs a model name (see `residual models`)" : null),
        Int("epochs", "model", "training epochs", o => o.Epochs, (o, v) => o.Epochs = v, 1),
        Int("batch-size", "model", "images per step", o => o.BatchSize, (o, v) => o.BatchSize = v, 1),
        Choice("opt", "model", "optimizer (adamw: torch's AdamW; lars: layer-wise trust ratios as MLPerf's ResNet-50)", o => o.Optimizer, (o, v) => o.Optimizer = v, ["sgd", "adamw", "lars"]),
        Double("lr", "model", "base learning rate", o => o.Lr, (o, v) => o.Lr = v, check: v => !(v > 0) || !double.IsFinite(v) ? $"must be a positive number, got {F(v)}" : null),
        Double("momentum", "model", "SGD momentum", o => o.Momentum, (o, v) => o.Momentum = v, check: v => !(v >= 0 && v < 1) ? $"must be in [0, 1), got {F(v)}" : null),
        Double("weight-decay", "model", "L2 weight decay", o => o.WeightDecay, (o, v) => o.WeightDecay = v, check: v => !(v >= 0) || !double.IsFinite(v) ? $"must be >= 0, got {F(v)}" : null),
        Switch("nesterov", "model", "Nesterov momentum", o => o.Nesterov, (o, v) => o.Nesterov = v),
        new TrainOption<double[]>("opt-betas", "model", "adamw: beta1,beta2", "B1,B2", o => o.OptBetas, (o, v) => o.OptBetas = v, ParseDoubles,
            v => v.Length != 2 || v.Any(b => !(b >= 0 && b < 1)) ? $"must be two numbers in [0, 1), got {string.Join(",", v.Select(F))}" : null),
        Double("opt-eps", "model", "adamw: epsilon", o => o.OptEps, (o, v) => o.OptEps = v, check: v => !(v >= 0) || !double.IsFinite(v) ? $"must be >= 0, got {F(v)}" : null),
        Double("lars-eta", "model", "lars: trust coefficient", o => o.LarsEta, (o, v) => o.LarsEta = v, check: v => !(v > 0) || !double.IsFinite(v) ? $"must be positive, got {F(v)}" : null),
        Double("clip-grad-norm", "model", "clip the gradients' total L2 norm to F before each step (torch's clip_grad_norm_); 0 = off", o => o.ClipGradNorm, (o, v) => o.ClipGradNorm = v,
            0, double.MaxValue, "must be >= 0"),
        Switch("no-bn-weight-decay", "model", "no weight decay on BN parameters and biases", o => o.NoBnWeightDecay, (o, v) => o.NoBnWeightDecay = v),
        Choice("lr-scheduler", "model", "learning-rate schedule, torch's names (step and cosine are read as multisteplr and cosineannealinglr)",
            o => o.Schedule, (o, v) => o.Schedule = v, ["steplr", "multisteplr", "cosineannealinglr", "exponentiallr", "plateau"],
            aliases: ["schedule"], synonyms: [("step", "multisteplr"), ("cosine", "cosineannealinglr"), ("reducelronplateau", "plateau")]),
        new TrainOption<int[]>("lr-steps", "model", "multisteplr: epochs where the rate is multiplied by --lr-gamma (default: 1/2 and 3/4 of --epochs)", "E1,E2,...",
            o => o.LrSteps, (o, v) => o.LrSteps = v, ParseInts, CheckSteps),
        Int("lr-step-size", "model", "steplr: epochs between drops", o => o.LrStepSize, (o, v) => o.LrStepSize = v, 1),
        Double("lr-gamma", "model", "factor of each drop (steplr, multisteplr, plateau) or per epoch (exponentiallr)", o => o.LrGamma, (o, v) => o.LrGamma = v,
            check: v => !(v > 0 && v <= 1) ? $"must be in (0, 1], got {F(v)}" : null),
        Double("lr-min", "model", "cosineannealinglr: the rate at the end", o => o.LrMin, (o, v) => o.LrMin = v, 0, double.MaxValue, "must be >= 0"),
        Int("lr-warmup-epochs", "model", "warm-up epochs (ramped per step)", o => o.WarmupEpochs, (o, v) => o.WarmupEpochs = v, 0, aliases: ["warmup-epochs"]),
        Choice("lr-warmup-method", "model", "warm-up: from decay x lr up to lr, or decay x lr throughout", o => o.WarmupMethod, (o, v) => o.WarmupMethod = v, ["linear", "constant"]),
        Double("lr-warmup-decay", "model", "the warm-up's starting factor", o => o.WarmupDecay, (o, v) => o.WarmupDecay = v, 0, 1),
        Int("plateau-patience", "model", "epochs without val improvement before the plateau schedule multiplies the LR by --lr-gamma", o => o.PlateauPatience, (o, v) => o.PlateauPatience = v, 0),
        Double("drop-path", "model", "stochastic depth: drop probability of the last residual block (earlier blocks scale linearly from 0)", o => o.DropPath, (o, v) => o.DropPath = v,
            check: v => !(v >= 0 && v < 1) ? $"must be in [0, 1), got {F(v)}" : null),
        Double("label-smoothing", "model", "label smoothing of the cross-entropy", o => o.LabelSmoothing, (o, v) => o.LabelSmoothing = v,
            check: v => !(v >= 0 && v < 1) ? $"must be in [0, 1), got {F(v)}" : null),
        Text("weights", "model", "start from these weights: safetensors or a PyTorch .pth/.pt state dict (torchvision's); a head of another class count is replaced and re-initialised",
            "FILE", o => o.Weights, (o, v) => o.Weights = v, v => v.Length == 0 ? "is empty (an unset shell variable?)" : null),
        Switch("freeze", "model", "with --weights: train the head only (the backbone and its BN statistics stay as loaded)", o => o.Freeze, (o, v) => o.Freeze = v),

        // ---- precision and layout ----
        Choice("precision", "running", "fp32 (strict, TF32 off), tf32 (PyTorch's default TF32 policy: convolutions on, matmuls off), " +
            "bf16 or fp16 (autocast: convolutions and linear layers in 16 bits, loss and master weights in F32; fp16 adds dynamic loss scaling)",
            o => o.Precision, (o, v) => o.Precision = v, PrecisionMode.Names,
            synonyms: [("f32", "fp32"), ("float32", "fp32"), ("bfloat16", "bf16"), ("f16", "fp16"), ("float16", "fp16"), ("half", "fp16"), ("amp", "fp16")]),
        Switch("channels-last", "running", "channels-last (NHWC) memory format for the model and the batches (what tensor cores want)",
            o => o.ChannelsLast, (o, v) => o.ChannelsLast = v),
        // ---- recipe: the pieces of torchvision's reference script (and timm) ----
        Double("mixup-alpha", "recipe", "mixup: each batch blended with itself rolled by one, weight ~ Beta(F, F), soft targets; 0 = off",
            o => o.MixupAlpha, (o, v) => o.MixupAlpha = v, 0, 1e6, "must be >= 0"),
        Double("cutmix-alpha", "recipe", "cutmix: a box of the previous image pasted in, area ~ Beta(F, F), soft targets; 0 = off (with --mixup-alpha: one of the two per batch)",
            o => o.CutmixAlpha, (o, v) => o.CutmixAlpha = v, 0, 1e6, "must be >= 0"),
        Choice("auto-augment", "recipe", "automatic augmentation of each training image (torchvision's TrivialAugmentWide, RandAugment, AutoAugment ImageNet policy)",
            o => o.AutoAugment, (o, v) => o.AutoAugment = v, ["none", "ta_wide", "ra", "imagenet"]),
        Int("ra-magnitude", "recipe", "ra: magnitude bin of every operation (of 31)", o => o.RaMagnitude, (o, v) => o.RaMagnitude = v, 0, 30),
        Int("ra-num-ops", "recipe", "ra: operations per image", o => o.RaNumOps, (o, v) => o.RaNumOps = v, 0, 16),
        Double("random-erase", "recipe", "probability of erasing a random box of each normalised training image (torchvision's RandomErasing); 0 = off",
            o => o.RandomErase, (o, v) => o.RandomErase = v, 0, 1),
        Switch("model-ema", "recipe", "keep an exponential moving average of the weights and buffers, evaluate it each epoch and save it in checkpoints (torchvision's)",
            o => o.ModelEma, (o, v) => o.ModelEma = v),
        Int("model-ema-steps", "recipe", "update the average every N steps of an epoch", o => o.ModelEmaSteps, (o, v) => o.ModelEmaSteps = v, 1),
        Double("model-ema-decay", "recipe", "the average's decay per update, before torchvision's adjustment (decay' = 1 - min(1, (1 - decay) x batch x steps / epochs))",
            o => o.ModelEmaDecay, (o, v) => o.ModelEmaDecay = v, check: v => !(v >= 0 && v < 1) ? $"must be in [0, 1), got {F(v)}" : null),

        // ---- running ----
        Int("seed", "running", "seed of the weights, data order and augmentation", o => o.Seed, (o, v) => o.Seed = v),
        Text("device", "running", "auto | cpu | cuda | cuda:N (auto: CUDA when present)", "D", o => o.Device, (o, v) => o.Device = v.Trim().ToLowerInvariant(), CheckDevice),
        Text("out", "running", "run directory (default runs/<model>-<timestamp>)", "DIR", o => o.Out, (o, v) => o.Out = v, commandOnly: true),
        Text("resume", "running", "continue a run exactly (bare: --out, else the latest run under runs/)", "RUN|CKPT", o => o.Resume, (o, v) => o.Resume = v, commandOnly: true),
        Switch("eval-only", "running", "evaluate (the resumed checkpoint) on val and stop", o => o.EvalOnly, (o, v) => o.EvalOnly = v, commandOnly: true),
        Text("config", "running", "options as JSON, keys as the option names (\"batch-size\": 256); the command line wins", "FILE.json", _ => null, (_, _) => { }, commandOnly: true),
        Int("max-steps-per-epoch", "running", "cap the steps of each epoch (smoke tests); 0 = whole epoch", o => o.MaxStepsPerEpoch, (o, v) => o.MaxStepsPerEpoch = v, 0),
        Int("log-every", "running", "read loss/accuracy and write metrics every N steps", o => o.LogEvery, (o, v) => o.LogEvery = v, 1),
        Switch("tensorboard", "running", "write TensorBoard event files into the run directory (on by default; --tensorboard false turns them off)",
            o => o.TensorBoard, (o, v) => o.TensorBoard = v),
        Int("threads", "running", "CPU threads for convolution and GEMM; 0 = the cores divided by the processes on this machine", o => o.Threads, (o, v) => o.Threads = v, 0, 1024),

        // ---- several processes (data parallel) ----
        Int("nproc", "parallel", "start N processes on this machine through mpirun, each on its share of every epoch (global batch = batch-size x N); " +
            "with several machines, launch with mpirun yourself", o => o.Nproc, (o, v) => o.Nproc = v, 1, 1024, commandOnly: true),
        Switch("sync-bn", "parallel", "batch-norm statistics over all processes' batches (torch's SyncBatchNorm); without it each process normalises by its own batch",
            o => o.SyncBn, (o, v) => o.SyncBn = v),
        Double("bucket-mb", "parallel", "gradient bucket size in MiB: each bucket is averaged across processes as soon as its gradients are ready (the first is 1 MiB)",
            o => o.BucketMb, (o, v) => o.BucketMb = v, check: v => !(v >= 0.001 && v <= 4096) ? $"must be in [0.001, 4096], got {F(v)}" : null),
    ];

    /// <summary>The option answering to <paramref name="name"/> (or one of its aliases), or null.</summary>
    public static TrainOption? Find(string name) => All.FirstOrDefault(o => o.Answers(name));

    private static string F(double v) => v.ToString("R", Inv);

    private static TrainOption<int> Int(string name, string group, string help, Func<TrainOptions, int> get, Action<TrainOptions, int> set,
        int min = int.MinValue, int max = int.MaxValue, Func<int, string?>? check = null, string[]? aliases = null, bool commandOnly = false) =>
        new(name, group, help, "N", get, set, s => int.Parse(s, NumberStyles.Integer, Inv), aliases: aliases, commandOnly: commandOnly, check:
            check ?? (v => v < min ? (max == int.MaxValue ? $"must be at least {min}, got {v}" : $"must be in [{min}, {max}], got {v}")
                : v > max ? $"must be in [{min}, {max}], got {v}" : null));

    private static TrainOption<double> Double(string name, string group, string help, Func<TrainOptions, double> get, Action<TrainOptions, double> set,
        double min = double.NegativeInfinity, double max = double.PositiveInfinity, string? rangeText = null, Func<double, string?>? check = null) =>
        new(name, group, help, "F", get, set, ParseDouble,
            check ?? (v => !(v >= min && v <= max) ? $"{rangeText ?? $"must be in [{F(min)}, {F(max)}]"}, got {F(v)}" : null));

    private static TrainOption<bool> Switch(string name, string group, string help, Func<TrainOptions, bool> get, Action<TrainOptions, bool> set, bool commandOnly = false) =>
        new(name, group, help, null, get, set, s => s switch
        {
            "true" or "True" => true,
            "false" or "False" => false,
            _ => throw new FormatException(),
        }, commandOnly: commandOnly);

    private static TrainOption<string?> Text(string name, string group, string help, string helpName, Func<TrainOptions, string?> get, Action<TrainOptions, string> set,
        Func<string, string?>? check = null, bool commandOnly = false) =>
        new(name, group, help, helpName, get, (o, v) => set(o, v!), s => s, v => v is null ? null : check?.Invoke(v), commandOnly: commandOnly);

    private static TrainOption<string> Choice(string name, string group, string help, Func<TrainOptions, string> get, Action<TrainOptions, string> set, string[] choices,
        string[]? aliases = null, (string Word, string Means)[]? synonyms = null) =>
        new(name, group, $"{help}: {string.Join(" | ", choices)}", "KIND", get, set,
            s => s.Trim().ToLowerInvariant() is var w && synonyms?.FirstOrDefault(x => x.Word == w).Means is { } m ? m : s.Trim().ToLowerInvariant(),
            v => choices.Contains(v, StringComparer.Ordinal) ? null : $"must be one of {string.Join(", ", choices)}, got '{v}'", aliases: aliases, choices: choices);

    private static double ParseDouble(string s)
    {
        var v = double.Parse(s, NumberStyles.Float, Inv);
        return double.IsNaN(v) ? throw new FormatException() : v;
    }

    private static double[] ParseDoubles(string s) =>
        s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(ParseDouble).ToArray();

    private static int[] ParseInts(string s) =>
        s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(x => int.Parse(x, NumberStyles.Integer, Inv)).ToArray();

    private static string? CheckSteps(int[] steps)
    {
        for (int i = 0; i < steps.Length; i++)
        {
            if (steps[i] < 1) return $"epochs must be at least 1, got {steps[i]}";
            if (i > 0 && steps[i] <= steps[i - 1]) return $"must be strictly increasing, got {string.Join(",", steps)}";
        }
        return null;
    }

    private static string? CheckDevice(string d)
    {
        d = d.Trim().ToLowerInvariant();
        if (d is "auto" or "cpu" or "cuda") return null;
        if (!d.StartsWith("cuda:", StringComparison.Ordinal)) return $"must be auto, cpu, cuda or cuda:N, got '{d}'";
        try
        {
            ResidualEngine.Device.Parse(d);
            return null;
        }
        catch (ArgumentException e)
        {
            return $"must be auto, cpu, cuda or cuda:N, got '{d}' ({e.Message})";
        }
    }
}
