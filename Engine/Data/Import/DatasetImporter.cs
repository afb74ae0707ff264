// `residual data import`: turns a dataset distributed as arrays (the IDX files of MNIST,
// Fashion-MNIST, KMNIST and EMNIST; CIFAR-10's python or binary archive) into an ImageFolder of
// lossless PNGs: OUT/train/<label>_<class>/<index>.png from the training split and
// OUT/val/<label>_<class>/<index>.png from the official test split, where <index> is the image's
// position in its source file (so val/3_Dress/00042.png is record 42 of the test file) and the
// class folders sort into the dataset's own label order. Grayscale stays 8-bit gray (the loader
// replicates it to RGB), CIFAR is RGB. OUT is claimed through OwnedFolder: the manifest (naming
// every file, and the SHA-256 of every source file) is written before the first image, so a
// folder the importer did not write is never touched, and importing the same source again is a
// no-op.
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using SkiaSharp;

namespace ResidualEngine.Data.Import;

public sealed record ImportResult(string Root, int TrainImages, int ValImages, IReadOnlyList<string> ClassFolders, bool Reused, TimeSpan Elapsed);

public static class DatasetImporter
{
    public const string Generator = "residual-data-import";
    public const int Version = 1;

    /// <summary>Imports the IDX dataset in folder <paramref name="source"/>.</summary>
    /// <param name="classNames">Names by label; null = from the folder (an EMNIST mapping file, "fashion" in the path: Fashion-MNIST, "kmnist": KMNIST) or else the label numbers.</param>
    /// <param name="transpose">Swap rows and columns; null = only for EMNIST (files named emnist-*).</param>
    public static ImportResult ImportIdx(string source, string output, IReadOnlyList<string>? classNames = null, string? prefix = null,
        bool? transpose = null, int threads = 0, Action<string>? log = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(source);
        var sw = Stopwatch.StartNew();
        var files = IdxDataset.Find(source, prefix);
        bool isEmnist = files.Prefix.StartsWith("emnist", StringComparison.OrdinalIgnoreCase);
        bool flip = transpose ?? isEmnist;
        if (classNames is null)
        {
            var mapping = Path.Combine(source, files.Prefix + "mapping.txt");
            var full = Path.GetFullPath(source).ToLowerInvariant();
            (classNames, var why) = File.Exists(mapping) ? (ClassNames.FromEmnistMapping(mapping), Path.GetFileName(mapping))
                : full.Contains("fashion", StringComparison.Ordinal) ? (ClassNames.FashionMnist, "'fashion' in the path: Fashion-MNIST's names")
                : full.Contains("kmnist", StringComparison.Ordinal) ? (ClassNames.Kmnist, "'kmnist' in the path: KMNIST's names")
                : ((IReadOnlyList<string>?)null, "none given: the label numbers");
            log?.Invoke($"class names: {why}");
        }
        var parameters = new JsonObject
        {
            ["format"] = "idx",
            ["source"] = SourceFingerprint(files.All),
            ["transpose"] = flip,
            ["class_names"] = classNames is null ? null : new JsonArray(classNames.Select(n => (JsonNode?)n).ToArray()),
        };
        if (Reuse(output, parameters, log) is { } done) return done with { Elapsed = sw.Elapsed };
        log?.Invoke($"reading {string.Join(", ", files.All.Select(Path.GetFileName))} from {source}{(flip ? " (transposing, as EMNIST stores images)" : "")}");
        var train = IdxDataset.Load(files.TrainImages, files.TrainLabels, flip);
        var test = IdxDataset.Load(files.TestImages, files.TestLabels, flip);
        if (train.Height != test.Height || train.Width != test.Width)
            throw new InvalidDataException($"training images are {train.Height} x {train.Width} but test images {test.Height} x {test.Width}");
        return Write(output, parameters, train, test, classNames, threads, log, sw);
    }

    /// <summary>Imports CIFAR-10 from an archive (.tar.gz/.tar) or folder of either the python or the binary version.</summary>
    public static ImportResult ImportCifar10(string source, string output, IReadOnlyList<string>? classNames = null, int threads = 0, Action<string>? log = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(source);
        var sw = Stopwatch.StartNew();
        var sourceFiles = File.Exists(source) ? [source] : Directory.GetFiles(source, "*", SearchOption.AllDirectories)
            .Where(f => Path.GetFileName(f).StartsWith("data_batch_", StringComparison.Ordinal) || Path.GetFileName(f).StartsWith("test_batch", StringComparison.Ordinal)
                || Path.GetFileName(f).StartsWith("batches.meta", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToArray();
        var parameters = new JsonObject
        {
            ["format"] = "cifar10",
            ["source"] = SourceFingerprint(sourceFiles),
            ["class_names"] = classNames is null ? null : new JsonArray(classNames.Select(n => (JsonNode?)n).ToArray()),
        };
        if (Reuse(output, parameters, log) is { } done) return done with { Elapsed = sw.Elapsed };
        var cifar = CifarArchive.Read(source, log);
        var names = classNames ?? cifar.ClassNames ?? CifarArchive.DefaultClassNames;
        static LabelledImages Images(CifarSplit s) =>
            new(s.Pixels, s.Labels.Select(b => (int)b).ToArray(), CifarSplit.Side, CifarSplit.Side, 3, Planar: true);
        return Write(output, parameters, Images(cifar.Train), Images(cifar.Test), names, threads, log, sw);
    }

    private static ImportResult? Reuse(string output, JsonObject parameters, Action<string>? log)
    {
        if (OwnedFolder.Inspect(output, Generator, parameters) != FolderState.Complete) return null;
        var m = OwnedFolder.ReadManifest(output)!;
        int Count(string split) => m.Files.Where(kv => kv.Key.StartsWith(split + "/", StringComparison.Ordinal)).Sum(kv => kv.Value.Count);
        log?.Invoke($"{Path.GetFullPath(output)} already holds this import (same source files and options); nothing to do");
        return new ImportResult(Path.GetFullPath(output), Count("train"), Count("val"),
            m.Files.Keys.Where(k => k.StartsWith("train/", StringComparison.Ordinal)).Select(k => k[6..]).ToList(), true, TimeSpan.Zero);
    }

    /// <summary>Name, size and SHA-256 of each source file: equal fingerprints mean the same data.</summary>
    private static JsonArray SourceFingerprint(IEnumerable<string> files)
    {
        var a = new JsonArray();
        foreach (var f in files)
        {
            using var s = File.OpenRead(f);
            var hash = Convert.ToHexStringLower(SHA256.HashData(s));
            a.Add(new JsonObject { ["file"] = Path.GetFileName(f), ["bytes"] = new FileInfo(f).Length, ["sha256"] = hash });
        }
        return a;
    }

    private static ImportResult Write(string output, JsonObject parameters, LabelledImages train, LabelledImages val,
        IReadOnlyList<string>? names, int threads, Action<string>? log, Stopwatch sw)
    {
        int maxLabel = Math.Max(train.Labels.DefaultIfEmpty(0).Max(), val.Labels.DefaultIfEmpty(0).Max());
        if (names is not null && maxLabel >= names.Count)
            throw new InvalidDataException($"the data has label {maxLabel} but only {names.Count} class names were given (labels 0-{names.Count - 1})");
        int digits = Math.Max(1, (names?.Count ?? maxLabel + 1) - 1).ToString(CultureInfo.InvariantCulture).Length;
        string Folder(int label) => ClassNames.FolderName(label, names?[label] ?? "", digits);
        var trainLabels = train.Labels.Distinct().Order().ToList();
        var missing = val.Labels.Distinct().Where(l => !trainLabels.Contains(l)).ToList();
        if (missing.Count > 0) throw new InvalidDataException($"the test split has label{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing)} that the training split never uses");

        var files = new SortedDictionary<string, List<string>>(StringComparer.Ordinal) { [""] = ["README.txt"] };
        var jobs = new List<(LabelledImages Set, int Index, string Dir, string File)>(train.Count + val.Count);
        foreach (var (split, set) in new[] { ("train", train), ("val", val) })
        {
            int width = Math.Max(5, (set.Count - 1).ToString(CultureInfo.InvariantCulture).Length);
            for (int i = 0; i < set.Count; i++)
            {
                var dir = split + "/" + Folder(set.Labels[i]);
                var file = i.ToString(CultureInfo.InvariantCulture).PadLeft(width, '0') + ".png";
                if (!files.TryGetValue(dir, out var list)) files[dir] = list = [];
                list.Add(file);
                jobs.Add((set, i, dir, file));
            }
        }
        var root = Path.GetFullPath(output);
        var manifest = OwnedFolder.Begin(root, Generator, Version, parameters, files, log);
        foreach (var dir in files.Keys) Directory.CreateDirectory(Path.Combine(root, dir));
        File.WriteAllText(Path.Combine(root, "README.txt"), Readme(parameters, train, val, files.Keys.Where(k => k.StartsWith("train/", StringComparison.Ordinal)).Select(k => k[6..])));
        log?.Invoke($"writing {train.Count:N0} training and {val.Count:N0} validation PNGs ({train.Height} x {train.Width}, {(train.Channels == 1 ? "grayscale" : "RGB")}) to {root}");
        int done = 0;
        Parallel.ForEach(jobs, new ParallelOptions { MaxDegreeOfParallelism = threads > 0 ? threads : Environment.ProcessorCount }, j =>
        {
            File.WriteAllBytes(Path.Combine(root, j.Dir, j.File), EncodePng(j.Set, j.Index));
            int d = Interlocked.Increment(ref done);
            if (d % 20000 == 0) log?.Invoke($"  {d:N0} / {jobs.Count:N0}");
        });
        OwnedFolder.Finish(root, manifest);
        var classes = files.Keys.Where(k => k.StartsWith("train/", StringComparison.Ordinal)).Select(k => k[6..]).ToList();
        log?.Invoke($"imported {train.Count:N0} + {val.Count:N0} images in {classes.Count} classes into {root} in {sw.Elapsed.TotalSeconds:F1} s");
        return new ImportResult(root, train.Count, val.Count, classes, false, sw.Elapsed);
    }

    /// <summary>The PNG bytes of image <paramref name="index"/>: 8-bit gray, or RGB for three channels.</summary>
    public static byte[] EncodePng(LabelledImages set, int index)
    {
        ArgumentNullException.ThrowIfNull(set);
        int h = set.Height, w = set.Width, plane = h * w;
        var src = set.Pixels.AsSpan(index * set.ImageBytes, set.ImageBytes);
        var info = new SKImageInfo(w, h, set.Channels == 1 ? SKColorType.Gray8 : SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var bmp = new SKBitmap(info);
        var dst = bmp.GetPixelSpan();
        if (set.Channels == 1) src.CopyTo(dst);
        else
            for (int p = 0; p < plane; p++)
            {
                dst[4 * p] = set.Planar ? src[p] : src[3 * p];
                dst[4 * p + 1] = set.Planar ? src[plane + p] : src[3 * p + 1];
                dst[4 * p + 2] = set.Planar ? src[2 * plane + p] : src[3 * p + 2];
                dst[4 * p + 3] = 255;
            }
        using var data = bmp.Encode(SKEncodedImageFormat.Png, 100)
            ?? throw new InvalidOperationException("SkiaSharp could not encode a PNG");
        return data.ToArray();
    }

    private static string Readme(JsonObject parameters, LabelledImages train, LabelledImages val, IEnumerable<string> classes) => $"""
        Written by `residual data import` ({Generator} v{Version}) from:
        {string.Join("\n", parameters["source"]!.AsArray().Select(s => $"  {s!["file"]} ({s["bytes"]} bytes, sha256 {s["sha256"]})"))}

        train/<class>/<index>.png: the {train.Count} images of the training split; val/<class>/<index>.png: the {val.Count}
        images of the official test split. <index> is the image's position in its source file. Images are
        {train.Width} x {train.Height}, {(train.Channels == 1 ? "8-bit grayscale" : "8-bit RGB")}, lossless PNG. Class folders are
        "<label>_<name>", so that their sorted order is the dataset's label order:
          {string.Join("\n  ", classes)}

        manifest.json names every file written here; `residual data import` only ever replaces or deletes
        the files it names, and refuses a folder that holds anything else.
        """;
}
