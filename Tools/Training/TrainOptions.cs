// The resolved options of `residual train`: every knob with its default, validation with
// errors that name the option, and the JSON form written to RUNDIR/config.json (whose keys are
// the option names, so the file can be passed back with --config). Parsing lives in
// TrainOptionsParser; this file is the data and its checks.
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ResidualEngine.Training;

public sealed class TrainOptions
{
    // ---- data ----
    /// <summary>ImageFolder root holding train/ and val/; null means synthetic data.</summary>
    public string? Data { get; set; }
    public int SynthClasses { get; set; } = 10;
    public int SynthTrainPerClass { get; set; } = 260;
    public int SynthValPerClass { get; set; } = 50;
    public int SynthSize { get; set; } = 64;
    public int SynthSeed { get; set; } = 1;

    // ---- model and optimisation ----
    public string Model { get; set; } = "resnet20";
    public int Epochs { get; set; } = 6;
    public int BatchSize { get; set; } = 64;
    public double Lr { get; set; } = 0.1;
    public double Momentum { get; set; } = 0.9;
    public double WeightDecay { get; set; } = 1e-4;
    public bool Nesterov { get; set; }
    public bool NoBnWeightDecay { get; set; }
    public string Schedule { get; set; } = "cosine";
    public int[] LrSteps { get; set; } = [];
    public int WarmupEpochs { get; set; }
    /// <summary>Epochs without improvement of the val error before the plateau schedule divides the LR by 10.</summary>
    public int PlateauPatience { get; set; } = 10;
    public double LabelSmoothing { get; set; }
    /// <summary>Crop size fed to the network; 0 means the model's native size (224 ImageNet nets, 32 CIFAR nets), capped by the synthetic image size.</summary>
    public int ImageSize { get; set; }
    /// <summary>"imagenet": RandomResizedCrop + flip, eval resize + centre crop; "cifar": He et al.'s small-image
    /// augmentation (pad 4 + random crop + flip; eval the centre view; see SmallImageAugmentation.cs).</summary>
    public string Augment { get; set; } = "imagenet";
    /// <summary>RandomResizedCrop's smallest area fraction; 0 means auto (0.08, the paper's, for --data; 0.35 for the small synthetic images).</summary>
    public double MinCropScale { get; set; }

    // ---- running ----
    public int Workers { get; set; } = 2;
    public int Seed { get; set; } = 1;
    public string Device { get; set; } = "auto";
    public string? Out { get; set; }
    public int MaxStepsPerEpoch { get; set; }
    public int LogEvery { get; set; } = 20;
    public bool EvalOnly { get; set; }
    public string? Resume { get; set; }

    public bool Synthetic => Data is null;

    /// <summary>The crop scale actually used (resolving 0 = auto).</summary>
    public double ResolvedMinCropScale => MinCropScale > 0 ? MinCropScale : Synthetic ? 0.35 : 0.08;

    /// <summary>Directory of the default synthetic data set; its name carries every generator parameter.</summary>
    public string SyntheticDir(string root = "data") =>
        Path.Combine(root, $"synthetic-c{SynthClasses}-t{SynthTrainPerClass}-v{SynthValPerClass}-s{SynthSize}-seed{SynthSeed}");

    /// <summary>Throws ArgumentException naming the first option that is out of range or inconsistent.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Model)) throw new ArgumentException("option --model needs a model name (see `residual models`)");
        if (Epochs < 1) throw new ArgumentException($"option --epochs must be at least 1, got {Epochs}");
        if (BatchSize < 1) throw new ArgumentException($"option --batch-size must be at least 1, got {BatchSize}");
        if (!(Lr > 0) || !double.IsFinite(Lr)) throw new ArgumentException($"option --lr must be a positive number, got {Fmt(Lr)}");
        if (!(Momentum >= 0 && Momentum < 1)) throw new ArgumentException($"option --momentum must be in [0, 1), got {Fmt(Momentum)}");
        if (!(WeightDecay >= 0) || !double.IsFinite(WeightDecay)) throw new ArgumentException($"option --weight-decay must be >= 0, got {Fmt(WeightDecay)}");
        if (Nesterov && Momentum == 0) throw new ArgumentException("option --nesterov needs a momentum above 0");
        if (Schedule is not ("step" or "plateau" or "cosine")) throw new ArgumentException($"option --schedule must be one of step, plateau, cosine, got '{Schedule}'");
        for (int i = 0; i < LrSteps.Length; i++)
        {
            if (LrSteps[i] < 1) throw new ArgumentException($"option --lr-steps: epochs must be at least 1, got {LrSteps[i]}");
            if (i > 0 && LrSteps[i] <= LrSteps[i - 1]) throw new ArgumentException($"option --lr-steps must be strictly increasing, got {string.Join(",", LrSteps)}");
        }
        if (LrSteps.Length > 0 && Schedule != "step") throw new ArgumentException($"option --lr-steps only applies to --schedule step (schedule is {Schedule})");
        if (WarmupEpochs < 0) throw new ArgumentException($"option --warmup-epochs must be >= 0, got {WarmupEpochs}");
        if (WarmupEpochs >= Epochs && WarmupEpochs > 0) throw new ArgumentException($"option --warmup-epochs ({WarmupEpochs}) must be less than --epochs ({Epochs})");
        if (PlateauPatience < 0) throw new ArgumentException($"option --plateau-patience must be >= 0, got {PlateauPatience}");
        if (!(LabelSmoothing >= 0 && LabelSmoothing < 1)) throw new ArgumentException($"option --label-smoothing must be in [0, 1), got {Fmt(LabelSmoothing)}");
        if (ImageSize != 0 && (ImageSize < 8 || ImageSize > 1024)) throw new ArgumentException($"option --image-size must be 0 (model default) or in [8, 1024], got {ImageSize}");
        if (Augment is not ("imagenet" or "cifar")) throw new ArgumentException($"option --augment must be imagenet or cifar, got '{Augment}'");
        if (!(MinCropScale >= 0 && MinCropScale <= 1)) throw new ArgumentException($"option --min-crop-scale must be in (0, 1] (or 0 for auto), got {Fmt(MinCropScale)}");
        if (Workers < 0 || Workers > 256) throw new ArgumentException($"option --workers must be in [0, 256], got {Workers}");
        if (MaxStepsPerEpoch < 0) throw new ArgumentException($"option --max-steps-per-epoch must be >= 0 (0 = whole epoch), got {MaxStepsPerEpoch}");
        if (LogEvery < 1) throw new ArgumentException($"option --log-every must be at least 1, got {LogEvery}");
        if (Device is not ("auto" or "cpu" or "cuda") && !Device.StartsWith("cuda:", StringComparison.Ordinal))
            throw new ArgumentException($"option --device must be auto, cpu, cuda or cuda:N, got '{Device}'");
        if (Device.StartsWith("cuda:", StringComparison.Ordinal)) ResidualEngine.Device.Parse(Device);
        if (Data is not null)
        {
            if (!Directory.Exists(Data)) throw new ArgumentException($"option --data: directory '{Data}' does not exist");
            if (!Directory.Exists(Path.Combine(Data, "val")))
                throw new ArgumentException($"option --data: '{Data}' has no val/ folder (expected DIR/train/<class>/*.jpg and DIR/val/<class>/*.jpg)");
            if (!EvalOnly && !Directory.Exists(Path.Combine(Data, "train")))
                throw new ArgumentException($"option --data: '{Data}' has no train/ folder (expected DIR/train/<class>/*.jpg and DIR/val/<class>/*.jpg)");
        }
        if (SynthClasses < 2 || SynthClasses > 1000) throw new ArgumentException($"option --synth-classes must be in [2, 1000], got {SynthClasses}");
        if (SynthTrainPerClass < 1) throw new ArgumentException($"option --synth-train-per-class must be at least 1, got {SynthTrainPerClass}");
        if (SynthValPerClass < 1) throw new ArgumentException($"option --synth-val-per-class must be at least 1, got {SynthValPerClass}");
        if (SynthSize < 8 || SynthSize > 512) throw new ArgumentException($"option --synth-size must be in [8, 512], got {SynthSize}");
    }

    private static string Fmt(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>The options as JSON with option names as keys (what config.json holds).</summary>
    public JsonObject ToJson()
    {
        var o = new JsonObject
        {
            ["data"] = Data is null ? null : Path.GetFullPath(Data),
            ["synthetic"] = Synthetic,
            ["synth-classes"] = SynthClasses,
            ["synth-train-per-class"] = SynthTrainPerClass,
            ["synth-val-per-class"] = SynthValPerClass,
            ["synth-size"] = SynthSize,
            ["synth-seed"] = SynthSeed,
            ["model"] = Model,
            ["epochs"] = Epochs,
            ["batch-size"] = BatchSize,
            ["lr"] = Lr,
            ["momentum"] = Momentum,
            ["weight-decay"] = WeightDecay,
            ["nesterov"] = Nesterov,
            ["no-bn-weight-decay"] = NoBnWeightDecay,
            ["schedule"] = Schedule,
            ["lr-steps"] = new JsonArray(LrSteps.Select(s => (JsonNode?)JsonValue.Create(s)).ToArray()),
            ["warmup-epochs"] = WarmupEpochs,
            ["plateau-patience"] = PlateauPatience,
            ["label-smoothing"] = LabelSmoothing,
            ["image-size"] = ImageSize,
            ["augment"] = Augment,
            ["min-crop-scale"] = MinCropScale,
            ["workers"] = Workers,
            ["seed"] = Seed,
            ["device"] = Device,
            ["max-steps-per-epoch"] = MaxStepsPerEpoch,
            ["log-every"] = LogEvery,
        };
        return o;
    }

    public string ToJsonText() => ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    public TrainOptions Clone() => (TrainOptions)MemberwiseClone();
}
