// One benchmark configuration (model, batch, image size, device, mode, steps, threads, precision
// (fp32, tf32, bf16, fp16: Training/PrecisionMode.cs), format (nchw, or nhwc = --channels-last)),
// parsed and validated from `residual bench` options. The same configuration is handed
// to Tools/bench/pytorch_baseline.py as command-line options, so both sides run the same workload.
using System.Globalization;
using ResidualEngine.Tools.Cli;

namespace ResidualEngine.Tools.Bench;

public enum BenchMode { Train, Infer }

public sealed record BenchConfig
{
    public string Model { get; init; } = "resnet18";
    public int BatchSize { get; init; } = 16;
    /// <summary>Input height and width; null = the model's native size (224 ImageNet, 32 CIFAR).</summary>
    public int? ImageSize { get; init; }
    /// <summary>Classes of the head; null = the model's default (1000 ImageNet, 10 CIFAR).</summary>
    public int? NumClasses { get; init; }
    public Device Device { get; init; } = Device.Cpu;
    public BenchMode Mode { get; init; } = BenchMode.Train;
    public int Warmup { get; init; } = 2;
    public int Steps { get; init; } = 10;
    /// <summary>CPU worker threads; 0 = the runtime's default (all cores).</summary>
    public int Threads { get; init; }
    public string Precision { get; init; } = "fp32";
    public string Format { get; init; } = "nchw";
    public int Seed { get; init; }
    /// <summary>SGD learning rate of the train step (small, so random data does not blow up the weights).</summary>
    public double LearningRate { get; init; } = 0.01;
    public bool Profile { get; init; }

    public string ModeName => Mode == BenchMode.Train ? "train" : "infer";
    public string DeviceName => Device.Type == DeviceType.Cpu ? "cpu" : Device.ToString();

    /// <summary>Reads the shared options; <paramref name="defaults"/> supplies values for those not given.</summary>
    public static BenchConfig Parse(Args a, BenchConfig defaults)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(defaults);
        var model = a.String("model") ?? defaults.Model;
        if (string.IsNullOrWhiteSpace(model)) throw new ArgumentException("option --model needs a model name (see `residual models`)");
        var imageSize = a.String("image-size") is null ? defaults.ImageSize : a.Int("image-size", 0, 8, 4096);
        var numClasses = a.String("num-classes") is null ? defaults.NumClasses : a.Int("num-classes", 0, 1, 1_000_000);
        var device = a.String("device") is { } d ? Device.Parse(d) : defaults.Device;
        var mode = a.Choice("mode", defaults.ModeName, "train", "infer") == "train" ? BenchMode.Train : BenchMode.Infer;
        return defaults with
        {
            Model = model.Trim(),
            BatchSize = a.Int("batch-size", defaults.BatchSize, 1, 65536),
            ImageSize = imageSize,
            NumClasses = numClasses,
            Device = device,
            Mode = mode,
            Warmup = a.Int("warmup", defaults.Warmup, 0, 100_000),
            Steps = a.Int("steps", defaults.Steps, 1, 1_000_000),
            Threads = a.Int("threads", defaults.Threads, 0, 1024),
            Precision = CheckPrecision(a.String("precision") ?? defaults.Precision),
            Format = a.Flag("channels-last") ? "nhwc" : CheckFormat(a.String("format") ?? defaults.Format),
            Seed = a.Int("seed", defaults.Seed),
            LearningRate = a.Double("lr", defaults.LearningRate, 0, 10),
            Profile = a.Flag("profile") || defaults.Profile,
        };
    }

    /// <summary>fp32, tf32, bf16 or fp16 (and their synonyms; see PrecisionMode).</summary>
    public static string CheckPrecision(string p) => Training.PrecisionMode.Parse(p).Name;

    /// <summary>nchw, or nhwc (also written channels-last / channels_last).</summary>
    public static string CheckFormat(string f)
    {
        var s = f.Trim().ToLowerInvariant();
        return s switch
        {
            "nchw" => "nchw",
            "nhwc" or "channels-last" or "channels_last" => "nhwc",
            _ => throw new ArgumentException($"option --format must be nchw or nhwc (channels-last), got '{f}'"),
        };
    }

    /// <summary>The memory format the model and inputs use.</summary>
    public MemoryFormat MemoryFormat => Format == "nhwc" ? MemoryFormat.ChannelsLast : MemoryFormat.Contiguous;

    /// <summary>A short label for tables: "resnet18 train b16 224px cpu 2T fp32".</summary>
    public string Label(int imageSize, int threads) =>
        string.Create(CultureInfo.InvariantCulture,
            $"{Model} {ModeName} b{BatchSize} {imageSize}px {DeviceName}{(Device.Type == DeviceType.Cpu ? $" {threads}T" : "")} {Precision} {Format}");

    /// <summary>The configuration as command-line options, understood alike by `residual bench` and by
    /// Tools/bench/pytorch_baseline.py; image size and classes are left out when null (the model's own).</summary>
    public IReadOnlyList<string> ToArgs(int? imageSize = null, int? numClasses = null)
    {
        var inv = CultureInfo.InvariantCulture;
        var l = new List<string>
        {
            "--model", Model, "--batch-size", BatchSize.ToString(inv),
            "--device", Device.Type == DeviceType.Cpu ? "cpu" : $"cuda:{Device.Index}",
            "--mode", ModeName, "--warmup", Warmup.ToString(inv), "--steps", Steps.ToString(inv),
            "--precision", Precision, "--format", Format, "--seed", Seed.ToString(inv), "--lr", LearningRate.ToString("R", inv),
        };
        if ((imageSize ?? ImageSize) is { } s) { l.Add("--image-size"); l.Add(s.ToString(inv)); }
        if ((numClasses ?? NumClasses) is { } k) { l.Add("--num-classes"); l.Add(k.ToString(inv)); }
        if (Threads > 0) { l.Add("--threads"); l.Add(Threads.ToString(inv)); }
        return l;
    }
}
