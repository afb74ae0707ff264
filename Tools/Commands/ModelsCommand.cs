// `residual models`: the model zoo as a table (name, parameters, forward GMACs at the native
// input size, input size, family) or, with --json, as a JSON array of {name, parameters, gmacs}
// for scripts. Sizes come from ModelZoo.Describe, which builds each model shape-only.
using System.Globalization;
using System.Text;
using System.Text.Json;
using ResidualEngine.Models;
using System.CommandLine;
using ResidualEngine.Tools.Cli;

namespace ResidualEngine.Tools.Commands;

public static class ModelsCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "print a JSON array (schema in docs/cli-json.md) instead of a table" };
        var names = new Argument<string[]>("NAME") { Description = "models to list (any spelling: resnet-56, ResNet56); default: the whole zoo", Arity = ArgumentArity.ZeroOrMore };
        var cmd = new Command("models", "List the model zoo: parameters, forward GMACs (one image at the native input size) and input size.") { json, names };
        cmd.SetAction(parse => Run(parse.GetValue(names) ?? [], parse.GetValue(json), parse.InvocationConfiguration.Output));
        return cmd;
    }

    /// <summary>Writes the table (or JSON) of the named models, or of the whole zoo; an unknown name is a usage error.</summary>
    public static int Run(IReadOnlyList<string> names, bool json, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(names);
        ArgumentNullException.ThrowIfNull(output);
        List<string> canonical;
        try { canonical = names.Count > 0 ? names.Select(ModelZoo.Canonical).ToList() : ModelZoo.Names.ToList(); }
        catch (ArgumentException e) { throw new UsageException(e.Message.Split(" (Parameter", 2)[0], e); }
        var infos = canonical.Select(ModelZoo.Describe).ToList();
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
