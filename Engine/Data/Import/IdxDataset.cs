// Finds and loads the four IDX files of an MNIST-family dataset in a folder: train and test
// (t10k) images and labels, compressed or not, as LeCun's MNIST, Fashion-MNIST, KMNIST
// ("train-images-idx3-ubyte.gz", ...) and EMNIST ("emnist-balanced-train-images-idx3-ubyte.gz",
// several splits in one folder: pick one with a prefix) name them. Checks that images are
// N x rows x cols, labels N, and that the counts agree.
using System.Text.RegularExpressions;

namespace ResidualEngine.Data.Import;

/// <summary>Grayscale or RGB images with labels. Pixels are HWC (channels last) unless <see cref="Planar"/> (CHW, as CIFAR).</summary>
public sealed record LabelledImages(byte[] Pixels, int[] Labels, int Height, int Width, int Channels, bool Planar)
{
    public int Count => Labels.Length;
    public int ImageBytes => Height * Width * Channels;
}

/// <summary>The files of one IDX dataset.</summary>
public sealed record IdxFiles(string Prefix, string TrainImages, string TrainLabels, string TestImages, string TestLabels)
{
    public IEnumerable<string> All => [TrainImages, TrainLabels, TestImages, TestLabels];
}

public static partial class IdxDataset
{
    [GeneratedRegex(@"^(?<prefix>.*?)(?<split>train|t10k|test)-(?<kind>images|labels)[-.]idx(?<dims>[13])-ubyte(?<gz>\.gz)?$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex FilePattern();

    /// <summary>True when <paramref name="dir"/> holds at least one IDX file named the usual way.</summary>
    public static bool Recognises(string dir) =>
        Directory.Exists(dir) && Directory.EnumerateFiles(dir).Any(f => FilePattern().IsMatch(Path.GetFileName(f)));

    /// <summary>The four files in <paramref name="dir"/>; <paramref name="prefix"/> picks one dataset when the folder holds several (EMNIST).</summary>
    public static IdxFiles Find(string dir, string? prefix = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(dir);
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"'{dir}' does not exist");
        var found = new List<(string Prefix, string Split, string Kind, bool Gz, string Path)>();
        foreach (var f in Directory.GetFiles(dir))
        {
            var m = FilePattern().Match(Path.GetFileName(f));
            if (!m.Success) continue;
            var kind = m.Groups["kind"].Value.ToLowerInvariant();
            if ((kind == "images") != (m.Groups["dims"].Value == "3")) continue;
            var split = m.Groups["split"].Value.ToLowerInvariant() == "train" ? "train" : "test";
            found.Add((m.Groups["prefix"].Value, split, kind, m.Groups["gz"].Success, f));
        }
        if (found.Count == 0)
            throw new InvalidDataException($"'{dir}' holds no IDX files (expected train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], " +
                "t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz], possibly with a prefix such as emnist-balanced-)");
        var prefixes = found.Select(f => f.Prefix).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        string chosen;
        if (prefix is not null)
        {
            chosen = prefixes.FirstOrDefault(p => p == prefix || p.TrimEnd('-', '_', '.') == prefix)
                ?? throw new ArgumentException($"no IDX files with prefix '{prefix}' in '{dir}'; prefixes there: {string.Join(", ", prefixes.Select(Show))}");
        }
        else if (prefixes.Count == 1) chosen = prefixes[0];
        else throw new ArgumentException($"'{dir}' holds several IDX datasets; pick one with --prefix: {string.Join(", ", prefixes.Select(Show))}");

        string Pick(string split, string kind)
        {
            var c = found.Where(f => f.Prefix == chosen && f.Split == split && f.Kind == kind).ToList();
            if (c.Count == 0)
                throw new InvalidDataException($"'{dir}': the {(split == "train" ? "training" : "test")} {kind} file of {Show(chosen)} is missing " +
                    $"(expected {chosen}{(split == "train" ? "train" : "t10k")}-{kind}-idx{(kind == "images" ? 3 : 1)}-ubyte[.gz])");
            // Both compressed and not: the uncompressed copy reads faster and holds the same data.
            return c.OrderBy(f => f.Gz).ThenBy(f => f.Path, StringComparer.Ordinal).First().Path;
        }
        return new IdxFiles(chosen, Pick("train", "images"), Pick("train", "labels"), Pick("test", "images"), Pick("test", "labels"));
    }

    private static string Show(string prefix) => prefix.Length == 0 ? "(no prefix)" : prefix.TrimEnd('-', '_', '.');

    /// <summary>Loads images and labels of one split; <paramref name="transpose"/> swaps rows and columns (EMNIST stores images transposed).</summary>
    public static LabelledImages Load(string imagesPath, string labelsPath, bool transpose)
    {
        var images = IdxFile.Read(imagesPath);
        var labels = IdxFile.Read(labelsPath);
        if (images.Dimensions.Count != 3)
            throw new InvalidDataException($"{images.Name}: an image file has 3 dimensions (count, rows, columns), this one has {images.Dimensions.Count} ({string.Join(" x ", images.Dimensions)})");
        if (labels.Dimensions.Count != 1)
            throw new InvalidDataException($"{labels.Name}: a label file has 1 dimension (count), this one has {labels.Dimensions.Count} ({string.Join(" x ", labels.Dimensions)})");
        if (images.Count != labels.Count)
            throw new InvalidDataException($"{images.Name} holds {images.Count:N0} images but {labels.Name} holds {labels.Count:N0} labels");
        int h = images.Dimensions[1], w = images.Dimensions[2];
        if (h > 4096 || w > 4096) throw new InvalidDataException($"{images.Name}: {h} x {w} images are not an MNIST-family dataset");
        var pixels = images.Data;
        if (transpose)
        {
            pixels = new byte[images.Data.Length];
            int plane = h * w;
            for (int n = 0; n < images.Count; n++)
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                        pixels[n * plane + x * h + y] = images.Data[n * plane + y * w + x];
            (h, w) = (w, h);
        }
        return new LabelledImages(pixels, labels.Data.Select(b => (int)b).ToArray(), h, w, 1, Planar: false);
    }
}
