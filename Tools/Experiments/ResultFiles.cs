// Small writers for experiment outputs: CSV (invariant culture, quoted where needed) and
// Markdown tables, written atomically so an interrupted run leaves no half file.
using System.Globalization;
using System.Text;

namespace ResidualEngine.Tools.Experiments;

public static class ResultFiles
{
    public static string Csv(IReadOnlyList<string> header, IEnumerable<IReadOnlyList<object?>> rows)
    {
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(rows);
        var sb = new StringBuilder();
        sb.AppendLine(string.Join(",", header.Select(Field)));
        foreach (var r in rows) sb.AppendLine(string.Join(",", r.Select(v => Field(Cell(v)))));
        return sb.ToString();
    }

    public static string Markdown(IReadOnlyList<string> header, IEnumerable<IReadOnlyList<object?>> rows)
    {
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(rows);
        var sb = new StringBuilder();
        sb.AppendLine("| " + string.Join(" | ", header) + " |");
        sb.AppendLine("|" + string.Concat(header.Select(_ => "---|")));
        foreach (var r in rows) sb.AppendLine("| " + string.Join(" | ", r.Select(v => Cell(v).Replace("|", "\\|", StringComparison.Ordinal))) + " |");
        return sb.ToString();
    }

    private static string Cell(object? v) => v switch
    {
        null => "",
        double d when double.IsNaN(d) => "nan",
        double d => d.ToString(Math.Abs(d) >= 1e-3 || d == 0 ? "0.###" : "G4", CultureInfo.InvariantCulture),
        float f => ((double)f).ToString("G6", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };

    private static string Field(string s) =>
        s.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + s.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : s;

    public static void Write(string path, string text)
    {
        ArgumentNullException.ThrowIfNull(path);
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var tmp = full + ".tmp";
        File.WriteAllText(tmp, text);
        File.Move(tmp, full, overwrite: true);
    }
}
