// The --json documents of `residual eval`, `info`, `kernels check` and `train` (models has its
// own array). Every document is one JSON object on stdout with "schema" ("residual.<kind>/1"):
// the version changes only when a field is removed or changes meaning, never when one is added.
// The fields are documented in docs/cli-json.md; human-readable lines go to stderr meanwhile.
using System.Text.Json;
using System.Text.Json.Nodes;
using ResidualEngine.Training;

namespace ResidualEngine.Tools.Cli;

public static class CliJson
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static JsonObject Document(string kind) => new() { ["schema"] = $"residual.{kind}/1" };

    public static string Text(JsonNode doc)
    {
        ArgumentNullException.ThrowIfNull(doc);
        return doc.ToJsonString(Indented);
    }

    /// <summary>A non-finite number becomes null (JSON has no NaN).</summary>
    public static JsonNode? Number(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;

    public static JsonObject Metrics(EvalResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        return new JsonObject
        {
            ["loss"] = Number(r.Loss),
            ["top1"] = Number(r.Top1),
            ["top5"] = Number(r.Top5),
            ["top1_error"] = Number(1 - r.Top1),
            ["top5_error"] = Number(1 - r.Top5),
            ["images"] = r.Samples,
            ["seconds"] = Number(r.Seconds),
        };
    }

    public static JsonObject Epoch(EpochRow e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return new JsonObject
        {
            ["epoch"] = e.Epoch,
            ["train_loss"] = Number(e.TrainLoss),
            ["train_top1"] = Number(e.TrainTop1),
            ["val_loss"] = Number(e.ValLoss),
            ["val_top1"] = Number(e.ValTop1),
            ["val_top5"] = Number(e.ValTop5),
            ["lr"] = Number(e.Lr),
            ["seconds"] = Number(e.Seconds),
        };
    }
}
