// The result of one benchmark run, as JSON with snake_case field names. Tools/bench/pytorch_baseline.py
// prints the same fields, so one record reads both sides of `residual bench compare`.
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ResidualEngine.Tools.Bench;

public sealed record StepTimes(double Median, double Min, double P10, double P90, double Max, double Mean)
{
    public static StepTimes From(Summary s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return new(s.Median, s.Min, s.P10, s.P90, s.Max, s.Mean);
    }
}

/// <summary>One row of the --profile table: time spent in one backend op during one phase of the step.</summary>
public sealed record ProfileRow(string Phase, string Op, long Calls, double CallsPerStep, double TotalMs, double MsPerStep, double Percent);

public sealed record BenchResult
{
    /// <summary>"residual" or "pytorch".</summary>
    public string Engine { get; init; } = "residual";
    public string EngineVersion { get; init; } = "";
    public string Model { get; init; } = "";
    public string Mode { get; init; } = "train";
    public string Device { get; init; } = "cpu";
    public string DeviceName { get; init; } = "";
    public int BatchSize { get; init; }
    public int ImageSize { get; init; }
    public int NumClasses { get; init; }
    public string Precision { get; init; } = "fp32";
    public string Format { get; init; } = "nchw";
    public int Threads { get; init; }
    public int Warmup { get; init; }
    public int Steps { get; init; }
    public int Seed { get; init; }
    public StepTimes MsPerStep { get; init; } = new(0, 0, 0, 0, 0, 0);
    public double ImagesPerSec { get; init; }
    /// <summary>The number compared across engines: the caching allocator's peak on CUDA; on the CPU, process
    /// peak RSS minus RSS before the model was built (see <see cref="PeakMemoryKind"/>).</summary>
    public long PeakMemoryBytes { get; init; }
    public string PeakMemoryKind { get; init; } = "";
    /// <summary>Ours only: peak bytes held by live tensors (exact counter, both devices).</summary>
    public long? PeakTensorBytes { get; init; }
    public long ProcessPeakRssBytes { get; init; }
    /// <summary>Ours: on CUDA the caching allocator's peak of allocated (rounded) bytes; on both devices what the
    /// caching allocator holds from the system at the end (live blocks plus cache, as torch.cuda.memory_reserved).</summary>
    public long? AllocatorPeakBytes { get; init; }
    public long? AllocatorReservedBytes { get; init; }
    public long Parameters { get; init; }
    public double GmacsPerImage { get; init; }
    public double GflopPerImage { get; init; }
    public string GflopNote { get; init; } = "";
    /// <summary>Ours: the share of this process's CPU time spent in the kernel during the timed steps
    /// (page faults and memory mapping show up here).</summary>
    public double? SystemTimeFraction { get; init; }
    /// <summary>CPU time (user + system, all threads) of this process per timed step: less sensitive than the
    /// step time to other processes on a busy machine (with one thread it is close to the time the work needs;
    /// with several it also counts threads spinning at barriers).</summary>
    public double? CpuMsPerStep { get; init; }
    /// <summary>Loss of the last train step (a sanity check that the step computed something finite).</summary>
    public double? FinalLoss { get; init; }
    public IReadOnlyList<double> SamplesMs { get; init; } = Array.Empty<double>();
    public IReadOnlyList<ProfileRow>? Profile { get; init; }
    public string? ProfileNote { get; init; }

    internal static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Parses one result; throws FormatException naming what is wrong.</summary>
    public static BenchResult FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            var r = JsonSerializer.Deserialize<BenchResult>(json, JsonOptions)
                ?? throw new FormatException("benchmark JSON is 'null'");
            if (r.ImagesPerSec <= 0 || r.BatchSize <= 0)
                throw new FormatException("benchmark JSON lacks images_per_sec or batch_size");
            return r;
        }
        catch (JsonException e)
        {
            throw new FormatException($"benchmark JSON does not parse: {e.Message}", e);
        }
    }

    /// <summary>Writes the JSON atomically (temporary file, then rename).</summary>
    public static void WriteFile(string path, string json)
    {
        ArgumentNullException.ThrowIfNull(path);
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var tmp = full + ".tmp";
        File.WriteAllText(tmp, json + "\n");
        File.Move(tmp, full, overwrite: true);
    }
}
