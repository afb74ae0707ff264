// Class names of the image datasets `residual data import` reads, as their documentation gives
// them (label order), and the folder names made from them. A folder is "<label>_<name>", the label
// zero-padded, so that the ordinal sort of ImageFolder (and of torchvision's) gives every class
// the label the dataset gives it: ImageFolder's label of "3_Dress" is 3 as in the IDX file.
//   fashion-mnist  Xiao, Rasul & Vollgraf 2017, github.com/zalandoresearch/fashion-mnist (README, "Labels")
//   mnist          the digits 0-9 (label = digit)
//   kmnist         Clanuwat et al. 2018, github.com/rois-codh/kmnist (kmnist_classmap.csv: romanised hiragana)
//   cifar10        www.cs.toronto.edu/~kriz/cifar.html (also in the archive's batches.meta)
// A user can also give a file with one name per line, or a comma-separated list; EMNIST's
// "<split>-mapping.txt" files (label, character code per line) are read when present.
using System.Globalization;
using System.Text;

namespace ResidualEngine.Data.Import;

public static class ClassNames
{
    public static IReadOnlyList<string> FashionMnist { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    public static IReadOnlyList<string> Mnist { get; } = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

    public static IReadOnlyList<string> Kmnist { get; } = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"];

    /// <summary>The names of the built-in sets, for help texts.</summary>
    public static IReadOnlyList<string> BuiltIn { get; } = ["fashion-mnist", "mnist", "kmnist", "cifar10"];

    public static IReadOnlyList<string>? Named(string set) => set.Trim().ToLowerInvariant().Replace("_", "-", StringComparison.Ordinal) switch
    {
        "fashion-mnist" or "fashionmnist" => FashionMnist,
        "mnist" or "digits" => Mnist,
        "kmnist" => Kmnist,
        "cifar10" or "cifar-10" => CifarArchive.DefaultClassNames,
        _ => null,
    };

    /// <summary>A built-in set's name, a file with one name per line, or a comma-separated list.</summary>
    public static IReadOnlyList<string> Resolve(string spec)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(spec);
        if (Named(spec) is { } set) return set;
        if (File.Exists(spec))
        {
            var lines = File.ReadAllLines(spec).Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
            if (lines.Count == 0) throw new ArgumentException($"class-name file '{spec}' is empty");
            return lines;
        }
        if (spec.Contains(',', StringComparison.Ordinal))
            return spec.Split(',').Select(s => s.Trim()).ToList();
        throw new ArgumentException($"class names '{spec}': not a built-in set ({string.Join(", ", BuiltIn)}), not a file, and not a comma-separated list");
    }

    /// <summary>EMNIST's mapping file: "label code" per line, code a Unicode code point; names indexed by label.</summary>
    public static IReadOnlyList<string> FromEmnistMapping(string path)
    {
        var map = new SortedDictionary<int, string>();
        foreach (var (line, i) in File.ReadAllLines(path).Select((l, i) => (l.Trim(), i)))
        {
            if (line.Length == 0) continue;
            var parts = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var label) ||
                !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var code) || label > 10_000 || code > 0x10FFFF)
                throw new InvalidDataException($"{path}:{i + 1}: expected '<label> <character code>', got '{line}'");
            map[label] = char.ConvertFromUtf32(code);
        }
        if (map.Count == 0) throw new InvalidDataException($"{path}: no mappings");
        var names = new string[map.Keys.Max() + 1];
        for (int l = 0; l < names.Length; l++) names[l] = map.TryGetValue(l, out var n) ? n : $"label{l}";
        return names;
    }

    /// <summary>The folder of class <paramref name="label"/>: "&lt;label&gt;_&lt;name&gt;", label padded to <paramref name="digits"/>, spaces and unsafe characters replaced by '_'.</summary>
    public static string FolderName(int label, string name, int digits)
    {
        ArgumentNullException.ThrowIfNull(name);
        var sb = new StringBuilder();
        foreach (var c in name.Trim())
            sb.Append(c is '/' or '\\' or ':' or '*' or '?' or '"' or '<' or '>' or '|' || char.IsControl(c) || char.IsWhiteSpace(c) ? '_' : c);
        var safe = sb.ToString();
        var prefix = label.ToString(CultureInfo.InvariantCulture).PadLeft(digits, '0');
        return safe.Length == 0 ? prefix : prefix + "_" + safe;
    }
}
