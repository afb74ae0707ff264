// The training state of a checkpoint that is not a tensor: where in training we are, the optimizer
// step count, the LR schedule's state, the history of finished epochs (for the tables and plots),
// the partial sums of an epoch that was interrupted, and the run's configuration (the options the
// checkpoint was made with). It travels inside the checkpoint's safetensors header (metadata key
// residual.checkpoint), so tensors and state are written by one rename. Checkpoints of earlier
// versions kept it in a .json beside the tensors with their size and SHA-256; those still load.
// Nothing in it is trusted: a hand-edited or damaged description is a CheckpointException naming
// the field, never a NullReferenceException.
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace ResidualEngine.Training;

/// <summary>One finished epoch, as in epochs.csv.</summary>
public sealed record EpochRow(int Epoch, double TrainLoss, double TrainTop1, double ValLoss, double ValTop1, double ValTop5, double Lr, double Seconds);

/// <summary>GradScaler's state: the scale, the clean steps since it last changed, and the steps it skipped.</summary>
public sealed record ScalerState(double Scale, int GrowthTracker, long SkippedSteps);

/// <summary>Running sums of the training metrics within an epoch (so an interrupted epoch resumes its averages).</summary>
public sealed class EpochSums
{
    public double LossSum { get; set; }
    public long Correct { get; set; }
    public long Samples { get; set; }
    [JsonIgnore] public double MeanLoss => Samples == 0 ? double.NaN : LossSum / Samples;
    [JsonIgnore] public double Top1 => Samples == 0 ? double.NaN : (double)Correct / Samples;
    public EpochSums Clone() => new() { LossSum = LossSum, Correct = Correct, Samples = Samples };
}

public sealed class CheckpointInfo
{
    public const string CurrentFormat = "residual-checkpoint/1";

    public string Format { get; set; } = CurrentFormat;
    public string Model { get; set; } = "";
    public int NumClasses { get; set; }
    public int ImageSize { get; set; }
    public int Seed { get; set; }
    /// <summary>Class folder names in label order, so evaluation can check it reads the same classes.</summary>
    public List<string> Classes { get; set; } = new();
    /// <summary>The epoch being worked on (1-based). A checkpoint at an epoch's end has StepInEpoch = 0 and Epoch = the next epoch.</summary>
    public int Epoch { get; set; } = 1;
    /// <summary>Optimizer steps already taken in <see cref="Epoch"/> (non-zero only for an interrupted epoch).</summary>
    public int StepInEpoch { get; set; }
    public long GlobalStep { get; set; }
    public long OptimizerSteps { get; set; }
    public string ScheduleKind { get; set; } = "";
    public Dictionary<string, double>? Schedule { get; set; }
    /// <summary>Extra generator state of the model (e.g. drop-path), by name; the data order is a pure function of (seed, epoch).</summary>
    public Dictionary<string, string> Rng { get; set; } = new();
    public double BestValTop1 { get; set; } = double.NegativeInfinity;
    public int BestEpoch { get; set; }
    public List<EpochRow> History { get; set; } = new();
    public EpochSums? Partial { get; set; }
    /// <summary>Sums of the logging window that was open when the run stopped, and its step count.</summary>
    public EpochSums? Window { get; set; }
    public int WindowSteps { get; set; }
    /// <summary>Seconds spent in the interrupted epoch so far.</summary>
    public double PartialSeconds { get; set; }
    /// <summary>The run's --precision (fp32, tf32, bf16, fp16); the weights are F32 master weights in every one.</summary>
    public string Precision { get; set; } = "fp32";
    /// <summary>Whether the run trained channels-last (the tensors are stored in logical NCHW order either way).</summary>
    public bool ChannelsLast { get; set; }
    /// <summary>The loss scaler's state (fp16 runs), so a resumed run scales exactly as the uninterrupted one.</summary>
    public ScalerState? Scaler { get; set; }
    /// <summary>"epoch" (end of an epoch), "interrupt" (Ctrl-C / SIGTERM) or "eval".</summary>
    public string Reason { get; set; } = "epoch";
    /// <summary>Processes that trained it (data parallel; the global batch was BatchSize x WorldSize). 1 in older checkpoints.</summary>
    public int WorldSize { get; set; } = 1;
    /// <summary>Images per step and process when it was saved; 0 in older checkpoints (the resuming run's batch size is assumed).</summary>
    public int BatchSize { get; set; }
    public DateTimeOffset SavedAt { get; set; }
    /// <summary>The run's options and details when the checkpoint was made (what config.json holds); null in older checkpoints.</summary>
    public JsonObject? Config { get; set; }

    // Checkpoints of earlier versions: a .json beside the tensors, which these tie to them.
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public string? TensorsFile { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public long TensorsBytes { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public string? TensorsSha256 { get; set; }

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = false,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string ToJsonText() => JsonSerializer.Serialize(this, Json);

    /// <summary>Parses and checks a description; <paramref name="where"/> names it in errors.</summary>
    public static CheckpointInfo FromJsonText(string text, string where)
    {
        CheckpointInfo? info;
        try { info = JsonSerializer.Deserialize<CheckpointInfo>(text, Json); }
        catch (JsonException e) { throw new CheckpointException($"checkpoint description in '{where}' is not valid: {e.Message}"); }
        if (info is null) throw new CheckpointException($"checkpoint description in '{where}' is empty");
        if (info.Format != CurrentFormat)
            throw new CheckpointException($"checkpoint description in '{where}' has format '{info.Format}', expected '{CurrentFormat}'");
        info.Check(where);
        return info;
    }

    // JSON null where an object is expected (hand edits) and values no run can have.
    private void Check(string where)
    {
        string? bad =
            string.IsNullOrWhiteSpace(Model) ? "model is missing" :
            NumClasses < 1 ? $"num_classes is {NumClasses}" :
            Classes is null ? "classes is missing (null)" :
            Classes.Count != 0 && Classes.Count != NumClasses ? $"classes lists {Classes.Count} names for {NumClasses} classes" :
            Classes.Any(c => c is null) ? "classes holds a null" :
            Epoch < 1 ? $"epoch is {Epoch}" :
            StepInEpoch < 0 ? $"step_in_epoch is {StepInEpoch}" :
            GlobalStep < 0 || OptimizerSteps < 0 ? "a step count is negative" :
            History is null ? "history is missing (null)" :
            History.Any(r => r is null) ? "history holds a null row" :
            ImageSize < 0 ? $"image_size is {ImageSize}" :
            null;
        if (bad is not null) throw new CheckpointException($"checkpoint description in '{where}' is not valid: {bad}");
        ScheduleKind ??= "";
        Rng ??= new();
        Reason ??= "epoch";
    }
}
