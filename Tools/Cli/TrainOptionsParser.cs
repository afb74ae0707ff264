// Builds TrainOptions from three layers, later ones winning: the config.json of a run being
// resumed, a --config FILE.json, and the command line. JSON layers use the option names as keys
// ("batch-size": 256, "lr-steps": [30, 60], "nesterov": true); they are turned back into
// command-line words so that one parser (Cli.Args) checks every value the same way.
using System.Text.Json;
using ResidualEngine.Training;

namespace ResidualEngine.Tools.Cli;

public static class TrainOptionsParser
{
    /// <summary>Options without a value.</summary>
    public static readonly string[] Flags = ["synthetic", "nesterov", "no-bn-weight-decay", "eval-only"];

    /// <summary>Options with a value, in help order.</summary>
    public static readonly string[] Valued =
    [
        "data", "model", "epochs", "batch-size", "lr", "momentum", "weight-decay", "schedule", "lr-steps",
        "warmup-epochs", "plateau-patience", "label-smoothing", "image-size", "augment", "min-crop-scale", "workers", "seed", "device", "out", "resume", "config",
        "max-steps-per-epoch", "log-every",
        "synth-classes", "synth-train-per-class", "synth-val-per-class", "synth-size", "synth-seed",
    ];

    /// <summary>Keys a JSON layer may not set: they say what this invocation does, not how to train.</summary>
    private static readonly string[] s_commandOnly = ["resume", "config", "out", "eval-only"];

    /// <summary>Parses the command line; <paramref name="runConfig"/> is a resumed run's config.json, if any.</summary>
    public static TrainOptions Parse(IReadOnlyList<string> cli, string? runConfig = null)
    {
        ArgumentNullException.ThrowIfNull(cli);
        var words = NormaliseResume(cli);
        var pre = new Args(words, Flags);
        var configFile = pre.String("config");

        var layered = new Dictionary<string, string?>(StringComparer.Ordinal);
        if (runConfig is not null) Merge(layered, ReadJsonLayer(runConfig, "run config", skipCommandOnly: true));
        if (configFile is not null)
        {
            if (!File.Exists(configFile)) throw new ArgumentException($"option --config: file '{configFile}' does not exist");
            Merge(layered, ReadJsonLayer(configFile, "--config", skipCommandOnly: false));
        }
        // The command line wins key by key; "data" and "synthetic" exclude each other, so either one on
        // the command line also drops the other from the JSON layers.
        var onCli = MentionedKeys(words);
        if (onCli.Contains("data") || onCli.Contains("synthetic")) { layered.Remove("data"); layered.Remove("synthetic"); }
        var tokens = new List<string>();
        foreach (var (k, v) in layered)
        {
            if (onCli.Contains(k) || v is null) continue;
            if (Flags.Contains(k)) { if (v == "true") tokens.Add("--" + k); }
            else { tokens.Add("--" + k); tokens.Add(v); }
        }
        tokens.AddRange(words);
        return FromArgs(new Args(tokens, Flags));
    }

    private static TrainOptions FromArgs(Args a)
    {
        var o = new TrainOptions();
        var data = a.String("data");
        bool synthetic = a.Flag("synthetic");
        if (data is not null && synthetic) throw new ArgumentException("options --data and --synthetic exclude each other");
        o.Data = string.IsNullOrEmpty(data) ? null : data;
        o.SynthClasses = a.Int("synth-classes", o.SynthClasses);
        o.SynthTrainPerClass = a.Int("synth-train-per-class", o.SynthTrainPerClass);
        o.SynthValPerClass = a.Int("synth-val-per-class", o.SynthValPerClass);
        o.SynthSize = a.Int("synth-size", o.SynthSize);
        o.SynthSeed = a.Int("synth-seed", o.SynthSeed);
        o.Model = a.String("model", o.Model);
        o.Epochs = a.Int("epochs", o.Epochs);
        o.BatchSize = a.Int("batch-size", o.BatchSize);
        o.Lr = a.Double("lr", o.Lr);
        o.Momentum = a.Double("momentum", o.Momentum);
        o.WeightDecay = a.Double("weight-decay", o.WeightDecay);
        o.Nesterov = a.Flag("nesterov");
        o.NoBnWeightDecay = a.Flag("no-bn-weight-decay");
        o.Schedule = a.Choice("schedule", o.Schedule, "step", "plateau", "cosine");
        o.LrSteps = a.Ints("lr-steps", []);
        o.WarmupEpochs = a.Int("warmup-epochs", o.WarmupEpochs);
        o.PlateauPatience = a.Int("plateau-patience", o.PlateauPatience);
        o.LabelSmoothing = a.Double("label-smoothing", o.LabelSmoothing);
        o.ImageSize = a.Int("image-size", o.ImageSize);
        o.Augment = a.Choice("augment", o.Augment, "imagenet", "cifar");
        o.MinCropScale = a.Double("min-crop-scale", o.MinCropScale);
        o.Workers = a.Int("workers", o.Workers);
        o.Seed = a.Int("seed", o.Seed);
        o.Device = a.String("device", o.Device).Trim().ToLowerInvariant();
        o.Out = a.String("out");
        o.Resume = a.String("resume");
        a.String("config");
        o.EvalOnly = a.Flag("eval-only");
        o.MaxStepsPerEpoch = a.Int("max-steps-per-epoch", o.MaxStepsPerEpoch);
        o.LogEvery = a.Int("log-every", o.LogEvery);
        if (a.Positional.Count > 0)
            throw new ArgumentException($"unexpected argument{(a.Positional.Count > 1 ? "s" : "")}: {string.Join(" ", a.Positional)} (options start with --)");
        a.RejectUnknown();
        o.Validate();
        return o;
    }

    /// <summary>A bare --resume (last word, or followed by another option) means "resume --out / the latest run": it becomes --resume=.</summary>
    private static List<string> NormaliseResume(IReadOnlyList<string> cli)
    {
        var w = new List<string>(cli.Count);
        for (int i = 0; i < cli.Count; i++)
        {
            if (cli[i] == "--resume" && (i + 1 >= cli.Count || cli[i + 1].StartsWith("--", StringComparison.Ordinal)))
                w.Add("--resume=");
            else w.Add(cli[i]);
        }
        return w;
    }

    private static HashSet<string> MentionedKeys(IEnumerable<string> words)
    {
        var keys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var w in words)
        {
            if (!w.StartsWith("--", StringComparison.Ordinal) || w.Length == 2) continue;
            var body = w[2..];
            int eq = body.IndexOf('=', StringComparison.Ordinal);
            keys.Add(eq >= 0 ? body[..eq] : body);
        }
        return keys;
    }

    private static void Merge(Dictionary<string, string?> into, Dictionary<string, string?> layer)
    {
        if (layer.ContainsKey("data") || layer.ContainsKey("synthetic")) { into.Remove("data"); into.Remove("synthetic"); }
        foreach (var (k, v) in layer) into[k] = v;
    }

    /// <summary>Reads a JSON object of options into option words (values as text; flags as "true"/"false"; null = unset).</summary>
    internal static Dictionary<string, string?> ReadJsonLayer(string path, string what, bool skipCommandOnly)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }); }
        catch (JsonException e) { throw new ArgumentException($"{what} '{path}' is not valid JSON: {e.Message}"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new ArgumentException($"{what} '{path}' must hold a JSON object of options, e.g. {{\"epochs\": 90, \"batch-size\": 256}}");
            var d = new Dictionary<string, string?>(StringComparer.Ordinal);
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                // Keys starting with '_' are notes (config.json keeps the resolved run details under "_run").
                if (p.Name.StartsWith('_')) continue;
                var key = p.Name.StartsWith("--", StringComparison.Ordinal) ? p.Name[2..] : p.Name;
                if (!Flags.Contains(key) && !Valued.Contains(key))
                    throw new ArgumentException($"{what} '{path}': unknown key '{p.Name}' (known: {string.Join(", ", Valued.Concat(Flags).Where(k => !s_commandOnly.Contains(k) || k == "out"))})");
                if (s_commandOnly.Contains(key))
                {
                    if (skipCommandOnly) continue;
                    if (key != "out") throw new ArgumentException($"{what} '{path}': key '{key}' belongs on the command line, not in a config file");
                }
                d[key] = ToWord(p.Value, key, what, path);
            }
            return d;
        }
    }

    private static string? ToWord(JsonElement v, string key, string what, string path)
    {
        bool flag = Flags.Contains(key);
        switch (v.ValueKind)
        {
            case JsonValueKind.Null: return null;
            case JsonValueKind.True:
            case JsonValueKind.False:
                if (!flag) throw new ArgumentException($"{what} '{path}': key '{key}' takes a value, not true/false");
                return v.ValueKind == JsonValueKind.True ? "true" : "false";
            case JsonValueKind.Number when !flag: return v.GetRawText();
            case JsonValueKind.String when !flag: return v.GetString();
            case JsonValueKind.Array when !flag:
                return string.Join(",", v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number
                    ? e.GetRawText()
                    : throw new ArgumentException($"{what} '{path}': key '{key}' must be a list of numbers")));
            default:
                throw new ArgumentException(flag
                    ? $"{what} '{path}': key '{key}' is a switch and takes true or false"
                    : $"{what} '{path}': key '{key}' has an unsupported value {v.GetRawText()}");
        }
    }
}
