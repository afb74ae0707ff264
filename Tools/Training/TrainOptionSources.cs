// Resolves TrainOptions from three layers, later ones winning key by key: the config.json of a
// run being resumed, a --config FILE.json, and the options given on the command line. JSON keys
// are option names ("batch-size": 256, "lr-steps": [30, 60], "nesterov": true); each value is
// turned into the word the command line would carry and parsed by the same TrainOption, so a
// file and the command line are checked alike.
using System.Text.Json;

namespace ResidualEngine.Training;

public static class TrainOptionSources
{
    /// <summary>Builds and validates the options. <paramref name="given"/>: the options written on the command
    /// line with their words (switches "true"/"false"; a bare --resume ""); <paramref name="runConfig"/>: a resumed
    /// run's config.json, if any. Throws ArgumentException naming the option or file at fault.</summary>
    public static TrainOptions Resolve(IReadOnlyList<(TrainOption Option, string Word)> given, string? runConfig = null)
    {
        ArgumentNullException.ThrowIfNull(given);
        var layered = new Dictionary<TrainOption, string?>();
        if (runConfig is not null) Merge(layered, ReadJsonLayer(runConfig, "run config", skipCommandOnly: true));
        var configFile = given.LastOrDefault(g => g.Option.Name == "config").Word;
        if (configFile is not null)
        {
            if (!File.Exists(configFile)) throw new ArgumentException($"option --config: file '{configFile}' does not exist");
            Merge(layered, ReadJsonLayer(configFile, "--config", skipCommandOnly: false));
        }
        var onCli = given.Select(g => g.Option).ToHashSet();
        // "data" and "synthetic" exclude each other, so either one on the command line drops both from the files.
        if (onCli.Any(IsDataChoice)) foreach (var k in layered.Keys.Where(IsDataChoice).ToList()) layered.Remove(k);

        var o = new TrainOptions();
        foreach (var (opt, word) in layered)
            if (!onCli.Contains(opt) && word is not null) opt.Apply(o, word);
        foreach (var (opt, word) in given)
        {
            if (opt.Name == "resume" && word.Length == 0) { o.Resume = ""; continue; }
            opt.Apply(o, word);
        }
        // A layer's choice was dropped above when the command line makes one, so any "true" left is in force.
        bool synthetic = given.Any(g => g.Option.Name == "synthetic" && g.Word == "true")
            || layered.Any(kv => kv.Key.Name == "synthetic" && kv.Value == "true");
        if (o.Data is not null && synthetic) throw new ArgumentException("options --data and --synthetic exclude each other");
        o.Validate();
        return o;
    }

    private static bool IsDataChoice(TrainOption o) => o.Name is "data" or "synthetic";

    private static void Merge(Dictionary<TrainOption, string?> into, Dictionary<TrainOption, string?> layer)
    {
        if (layer.Keys.Any(IsDataChoice)) foreach (var k in into.Keys.Where(IsDataChoice).ToList()) into.Remove(k);
        foreach (var (k, v) in layer) into[k] = v;
    }

    /// <summary>Reads a JSON object of options into option words (values as text; switches as "true"/"false"; null = unset).</summary>
    public static Dictionary<TrainOption, string?> ReadJsonLayer(string path, string what, bool skipCommandOnly)
    {
        ArgumentNullException.ThrowIfNull(path);
        JsonDocument doc;
        // Only a regular file of sane size is read (a FIFO passed as --config would block).
        string text;
        try { text = ResidualEngine.IO.SafeFile.ReadAllText(path, what); }
        catch (IOException e) { throw new ArgumentException(e.Message); }
        try { doc = JsonDocument.Parse(text, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }); }
        catch (JsonException e) { throw new ArgumentException($"{what} '{path}' is not valid JSON: {e.Message}"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new ArgumentException($"{what} '{path}' must hold a JSON object of options, e.g. {{\"epochs\": 90, \"batch-size\": 256}}");
            var d = new Dictionary<TrainOption, string?>();
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                // Keys starting with '_' are notes (config.json keeps the resolved run details under "_run").
                if (p.Name.StartsWith('_')) continue;
                var key = p.Name.StartsWith("--", StringComparison.Ordinal) ? p.Name[2..] : p.Name;
                var opt = TrainOptionTable.Find(key)
                    ?? throw new ArgumentException($"{what} '{path}': unknown key '{p.Name}' (known: {string.Join(", ", TrainOptionTable.All.Where(o => !o.CommandOnly || o.Name == "out").Select(o => o.Name))})");
                if (opt.CommandOnly)
                {
                    if (skipCommandOnly) continue;
                    if (opt.Name != "out") throw new ArgumentException($"{what} '{path}': key '{key}' belongs on the command line, not in a config file");
                }
                d[opt] = ToWord(p.Value, opt, what, path);
            }
            return d;
        }
    }

    private static string? ToWord(JsonElement v, TrainOption opt, string what, string path)
    {
        bool flag = opt.IsSwitch;
        var key = opt.Name;
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
