// `residual models`: the model zoo as a table (name, parameters, forward GMACs at the native
// input size, input size, family) or, with --json, as a JSON array of {name, parameters, gmacs}
// for scripts. Sizes come from ModelZoo.Describe, which builds each model shape-only.
using System.Globalization;
using System.Text;
using System.Text.Json;
using ResidualEngine.Models;
using ResidualEngine.Tools.Cli;

namespace ResidualEngine.Tools.Commands;

public static class ModelsCommand
{
    private const string Usage = """
        usage: residual models [--json] [NAME ...]

        Lists the model zoo: parameters, forward GMACs (one image at the native input size) and
        input size. Names may be given to list only those (any spelling: resnet-56, ResNet56).
          --json   print a JSON array of {"name", "parameters", "gmacs"} instead of a table
        """;

    public static int Run(string[] args) => Run(args, Console.Out);

    /// <summary>Runs the command writing to <paramref name="output"/> (tests capture it).</summary>
    public static int Run(string[] args, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        var a = new Args(args, "json");
        if (a.Help)
        {
            output.WriteLine(Usage);
            return 0;
        }
        bool json = a.Flag("json");
        a.RejectUnknown();
        var names = a.Positional.Count > 0 ? a.Positional.Select(ModelZoo.Canonical).ToList() : ModelZoo.Names.ToList();
        var infos = names.Select(ModelZoo.Describe).ToList();
        output.Write(json ? Json(infos) : Table(infos));
        return 0;
    }

    internal static string Json(IReadOnlyList<ModelInfo> infos)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartArray();
            foreach (var i in infos)
            {
                w.WriteStartObject();
                w.WriteString("name", i.Name);
                w.WriteNumber("parameters", i.Parameters);
                w.WriteNumber("gmacs", Math.Round(i.GMacs, 4));
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    internal static string Table(IReadOnlyList<ModelInfo> infos)
    {
        var c = CultureInfo.InvariantCulture;
        int nw = Math.Max(4, infos.Max(i => i.Name.Length));
        var sb = new StringBuilder();
        sb.AppendLine(c, $"{"name".PadRight(nw)}  {"parameters",12}  {"GMACs",8}  {"input",5}  description");
        foreach (var i in infos)
        {
            var cfg = i.Config;
            string kind = (cfg.Plain ? "plain " : cfg.PreActivation ? "pre-act " : "") + (cfg.Block == BlockKind.Basic ? "basic" : "bottleneck")
                + $" [{string.Join(",", cfg.Layers)}]" + (cfg.Stem == StemKind.Cifar ? ", CIFAR" : "")
                + (cfg.Plain ? "" : $", shortcut {cfg.Shortcut}")
                + (cfg.Groups != 1 || cfg.WidthPerGroup != 64 ? $", {cfg.Groups}x{cfg.WidthPerGroup}d" : "")
                + (cfg.SqueezeExcitation ? ", SE" : "");
            sb.AppendLine(c, $"{i.Name.PadRight(nw)}  {i.Parameters,12:N0}  {i.GMacs,8:F3}  {i.InputSize,5}  {kind}");
        }
        return sb.ToString();
    }
}
