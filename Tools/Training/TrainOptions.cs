// The resolved options of `residual train`: every knob with its default, validation with
// errors that name the option, and the JSON form written to RUNDIR/config.json (whose keys are
// the option names, so the file can be passed back with --config). Each option's name, help,
// range and parsing are declared in TrainOptionTable; this file holds the values (their
// initialisers are the defaults) and the rules that tie options together.
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
    /// <summary>sgd, adamw or lars.</summary>
    public string Optimizer { get; set; } = "sgd";
    public double Lr { get; set; } = 0.1;
    public double Momentum { get; set; } = 0.9;
    public double WeightDecay { get; set; } = 1e-4;
    public bool Nesterov { get; set; }
    public bool NoBnWeightDecay { get; set; }
    /// <summary>AdamW's beta1 and beta2.</summary>
    public double[] OptBetas { get; set; } = [0.9, 0.999];
    /// <summary>AdamW's epsilon.</summary>
    public double OptEps { get; set; } = 1e-8;
    /// <summary>LARS's trust coefficient.</summary>
    public double LarsEta { get; set; } = 0.001;
    /// <summary>Clip the gradients' total L2 norm to this before each step; 0 = off.</summary>
    public double ClipGradNorm { get; set; }
    /// <summary>torch's scheduler name (steplr, multisteplr, cosineannealinglr, exponentiallr) or plateau.
    /// Older names are read as the new ones (step: multisteplr, cosine: cosineannealinglr).</summary>
    public string Schedule
    {
        get => _schedule;
        set => _schedule = value?.Trim().ToLowerInvariant() switch
        {
            "step" => "multisteplr",
            "cosine" => "cosineannealinglr",
            "reducelronplateau" => "plateau",
            var v => v ?? throw new ArgumentNullException(nameof(value)),
        };
    }

    private string _schedule = "cosineannealinglr";
    public int[] LrSteps { get; set; } = [];
    /// <summary>steplr: epochs between drops.</summary>
    public int LrStepSize { get; set; } = 30;
    /// <summary>Factor of each drop (steplr, multisteplr, plateau) or per epoch (exponentiallr).</summary>
    public double LrGamma { get; set; } = 0.1;
    /// <summary>cosineannealinglr: the rate reached at the end.</summary>
    public double LrMin { get; set; }
    public int WarmupEpochs { get; set; }
    /// <summary>"linear" (from decay x lr up to lr) or "constant" (decay x lr until the warm-up ends).</summary>
    public string WarmupMethod { get; set; } = "linear";
    public double WarmupDecay { get; set; } = 0.01;
    /// <summary>Stochastic depth: the last block's drop probability (earlier blocks' grow linearly from 0).</summary>
    public double DropPath { get; set; }
    /// <summary>Epochs without improvement of the val error before the plateau schedule divides the LR by 10.</summary>
    public int PlateauPatience { get; set; } = 10;
    public double LabelSmoothing { get; set; }
    /// <summary>Weights to start from (safetensors or a PyTorch .pth/.pt state dict); the head is replaced when the class count differs.</summary>
    public string? Weights { get; set; }
    /// <summary>Train only the head: the backbone loaded from <see cref="Weights"/> stays as it is (BN statistics included).</summary>
    public bool Freeze { get; set; }
    /// <summary>Crop size fed to the network; 0 means the model's native size (224 ImageNet nets, 32 CIFAR nets), capped by the synthetic image size.</summary>
    public int ImageSize { get; set; }
    /// <summary>"imagenet": RandomResizedCrop + flip, eval resize + centre crop; "cifar": He et al.'s small-image
    /// augmentation (pad 4 + random crop + flip; eval the centre view; see SmallImageAugmentation.cs).</summary>
    public string Augment { get; set; } = "imagenet";
    /// <summary>RandomResizedCrop's smallest area fraction; 0 means auto (0.08, the paper's, for --data; 0.35 for the small synthetic images).</summary>
    public double MinCropScale { get; set; }
    /// <summary>Images whose header claims more pixels are skipped as bad files (PIL's limit by default).</summary>
    public long MaxImagePixels { get; set; } = ResidualEngine.Data.EncodedImage.DefaultMaxPixels;

    // ---- precision and layout ----
    /// <summary>fp32, tf32, bf16 or fp16 (see PrecisionMode).</summary>
    public string Precision { get; set; } = "fp32";
    /// <summary>Channels-last (NHWC) model and batches.</summary>
    public bool ChannelsLast { get; set; }

    /// <summary>The resolved precision mode.</summary>
    public PrecisionMode PrecisionMode => PrecisionMode.Parse(Precision);
    // ---- recipe (torchvision's reference script and timm) ----
    /// <summary>Mixup's Beta(alpha, alpha); 0 = off.</summary>
    public double MixupAlpha { get; set; }
    /// <summary>CutMix's Beta(alpha, alpha); 0 = off. With both on, each batch uses one of them (probability 0.5 each).</summary>
    public double CutmixAlpha { get; set; }
    /// <summary>none, ta_wide (TrivialAugmentWide), ra (RandAugment) or imagenet (AutoAugment's ImageNet policy).</summary>
    public string AutoAugment { get; set; } = "none";
    /// <summary>RandAugment's magnitude bin (of 31).</summary>
    public int RaMagnitude { get; set; } = 9;
    /// <summary>RandAugment's operations per image.</summary>
    public int RaNumOps { get; set; } = 2;
    /// <summary>RandomErasing's probability per image; 0 = off.</summary>
    public double RandomErase { get; set; }
    /// <summary>Keep an exponential moving average of the weights and buffers (torchvision's ExponentialMovingAverage).</summary>
    public bool ModelEma { get; set; }
    /// <summary>Update the average every N steps of an epoch.</summary>
    public int ModelEmaSteps { get; set; } = 32;
    /// <summary>torchvision's --model-ema-decay, before its adjustment for batch size, update interval and epochs.</summary>
    public double ModelEmaDecay { get; set; } = 0.99998;

    // ---- running ----
    public int Workers { get; set; } = 2;
    public int Seed { get; set; } = 1;
    public string Device { get; set; } = "auto";
    public string? Out { get; set; }
    public int MaxStepsPerEpoch { get; set; }
    public int LogEvery { get; set; } = 20;
    /// <summary>Write TensorBoard event files into the run directory.</summary>
    public bool TensorBoard { get; set; } = true;
    public bool EvalOnly { get; set; }
    public string? Resume { get; set; }

    // ---- several processes ----
    /// <summary>Local processes to start through mpirun (residual train --nproc N); 1 = this process only.</summary>
    public int Nproc { get; set; } = 1;
    /// <summary>BN statistics over every rank's batch (torch's SyncBatchNorm) in data-parallel training.</summary>
    public bool SyncBn { get; set; }
    /// <summary>Size of a gradient bucket in MiB (the first bucket is 1 MiB, as torch's).</summary>
    public double BucketMb { get; set; } = 25;
    /// <summary>CPU threads for GEMM and convolution; 0 = the cores divided by the processes on this machine.</summary>
    public int Threads { get; set; }

    public bool Synthetic => Data is null;

    /// <summary>The crop scale actually used (resolving 0 = auto).</summary>
    public double ResolvedMinCropScale => MinCropScale > 0 ? MinCropScale : Synthetic ? 0.35 : 0.08;

    /// <summary>Directory of the default synthetic data set; its name carries every generator parameter.</summary>
    public string SyntheticDir(string root = "data") =>
        Path.Combine(root, $"synthetic-c{SynthClasses}-t{SynthTrainPerClass}-v{SynthValPerClass}-s{SynthSize}-seed{SynthSeed}");

    /// <summary>Throws ArgumentException naming the first option that is out of range or inconsistent:
    /// each option's own check (TrainOptionTable), then the rules that tie options together.</summary>
    public void Validate()
    {
        foreach (var opt in TrainOptionTable.All)
            if (opt.Check(opt.Get(this)) is { } why) throw new ArgumentException($"option --{opt.Name} {why}");
        if (Nesterov && Momentum == 0) throw new ArgumentException("option --nesterov needs a momentum above 0");
        if (Nesterov && Optimizer == "adamw") throw new ArgumentException("option --nesterov applies to --opt sgd and lars, not adamw");
        if (NoBnWeightDecay && Optimizer == "lars") throw new ArgumentException("option --no-bn-weight-decay: --opt lars always leaves BN parameters and biases out of weight decay and trust ratios");
        if (LrSteps.Length > 0 && Schedule != "multisteplr") throw new ArgumentException($"option --lr-steps only applies to --lr-scheduler multisteplr (the scheduler is {Schedule})");
        if (Freeze && Weights is null) throw new ArgumentException("option --freeze needs --weights FILE (freezing a randomly initialised backbone trains only a linear head on random features)");
        if (WarmupEpochs >= Epochs && WarmupEpochs > 0) throw new ArgumentException($"option --lr-warmup-epochs ({WarmupEpochs}) must be less than --epochs ({Epochs})");
        ValidateRecipe();
        if (Data is not null)
        {
            if (!Directory.Exists(Data)) throw new ArgumentException($"option --data: directory '{Data}' does not exist");
            if (!Directory.Exists(Path.Combine(Data, "val")))
                throw new ArgumentException($"option --data: '{Data}' has no val/ folder (expected DIR/train/<class>/*.jpg and DIR/val/<class>/*.jpg)");
            if (!EvalOnly && !Directory.Exists(Path.Combine(Data, "train")))
                throw new ArgumentException($"option --data: '{Data}' has no train/ folder (expected DIR/train/<class>/*.jpg and DIR/val/<class>/*.jpg)");
        }
    }

    private void ValidateRecipe()
    {
        var defaults = new TrainOptions();
        if ((MixupAlpha > 0 || CutmixAlpha > 0) && BatchSize < 2)
            throw new ArgumentException($"option --{(MixupAlpha > 0 ? "mixup" : "cutmix")}-alpha needs --batch-size 2 or more (each image is mixed with the previous one in its batch)");
        if (AutoAugment != "ra" && (RaMagnitude != defaults.RaMagnitude || RaNumOps != defaults.RaNumOps))
            throw new ArgumentException($"options --ra-magnitude and --ra-num-ops apply to --auto-augment ra (it is {AutoAugment})");
        if (!ModelEma && (ModelEmaSteps != defaults.ModelEmaSteps || ModelEmaDecay != defaults.ModelEmaDecay))
            throw new ArgumentException("options --model-ema-steps and --model-ema-decay need --model-ema");
        if (Freeze && ModelEma) throw new ArgumentException("option --model-ema: with --freeze only the head trains; average it by training without --freeze, or drop --model-ema");
    }

    /// <summary>The options as JSON with option names as keys (what config.json holds); the data folder as a full path.</summary>
    public JsonObject ToJson()
    {
        var o = new JsonObject();
        foreach (var opt in TrainOptionTable.All)
            if (!opt.CommandOnly) o[opt.Name] = opt.ToJson(this);
        if (Data is not null) o["data"] = Path.GetFullPath(Data);
        if (Weights is not null) o["weights"] = Path.GetFullPath(Weights);
        return o;
    }

    public string ToJsonText() => ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    public TrainOptions Clone() => (TrainOptions)MemberwiseClone();
}
