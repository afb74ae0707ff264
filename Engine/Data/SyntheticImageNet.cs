// Writes a synthetic ImageNet-style dataset of real JPEG files in the ImageFolder layout:
// DIR/train/<class>/*.jpg and DIR/val/<class>/*.jpg, plus README.txt and manifest.json.
// Each picture is rendered (SyntheticRenderer) from its own generator seeded by
// (seed, split, class, index), so the files are identical for a seed whatever the number of
// threads. The folder is an OwnedFolder: manifest.json is written FIRST, naming every file about
// to be written, and marked complete at the end. A folder whose manifest matches the request and
// whose files are all there is reused; an interrupted or different synthetic set is replaced by
// deleting exactly the files its manifest names; any other non-empty folder (a real dataset in
// the same train/ + val/ layout, say) is refused and left as it was.
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ResidualEngine.Data;

public static class SyntheticImageNet
{
    private const string Generator = "residual-synthetic-imagenet";
    private const int Version = 2;

    /// <summary>What to generate.</summary>
    public sealed record Options(int Classes = 10, int TrainPerClass = 100, int ValPerClass = 20, int Size = 64, int Seed = 0, int Quality = 90)
    {
        public void Validate()
        {
            if (Classes < 2 || Classes > 10000) throw new ArgumentException($"synthetic data: classes must be 2..10000, got {Classes}");
            if (TrainPerClass < 1) throw new ArgumentException($"synthetic data: train images per class must be >= 1, got {TrainPerClass}");
            if (ValPerClass < 0) throw new ArgumentException($"synthetic data: val images per class must be >= 0, got {ValPerClass}");
            if (Size < 8 || Size > 1024) throw new ArgumentException($"synthetic data: size must be 8..1024 pixels, got {Size}");
            if (Quality < 1 || Quality > 100) throw new ArgumentException($"synthetic data: JPEG quality must be 1..100, got {Quality}");
        }
    }

    /// <summary>The result of <see cref="Generate"/>.</summary>
    public sealed record Result(string Root, int TrainImages, int ValImages, bool Reused, TimeSpan Elapsed);

    /// <summary>Folder name of class <paramref name="index"/>, e.g. "n0000_circles".</summary>
    public static string ClassName(int index) => SyntheticRenderer.ClassName(index);

    /// <summary>The JPEG bytes of one picture (what <see cref="Generate"/> writes for it).</summary>
    public static byte[] RenderImage(Options options, bool train, int classIndex, int index)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if ((uint)classIndex >= (uint)options.Classes) throw new ArgumentOutOfRangeException(nameof(classIndex));
        var rng = new Random(DataLoader.SampleSeed(options.Seed, train ? 0 : 1, classIndex, index));
        return SyntheticRenderer.Render(classIndex, options.Classes, options.Size, options.Quality, rng);
    }

    private static string FileName(int classIndex, int index) => $"n{classIndex:D4}_{index:D5}.jpg";

    /// <summary>True when <paramref name="root"/> holds exactly this dataset (manifest and every file).</summary>
    public static bool IsComplete(string root, Options options)
    {
        ArgumentNullException.ThrowIfNull(options);
        try
        {
            return OwnedFolder.Inspect(root, Generator, ParametersFor(options)) == FolderState.Complete;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>
    /// Writes the dataset under <paramref name="root"/>, or reuses it when already complete. A folder
    /// holding an earlier synthetic set of ours (other parameters, or interrupted) is replaced, deleting
    /// only the files its manifest names; any other non-empty folder is refused (IOException) untouched.
    /// </summary>
    public static Result Generate(string root, Options options, Action<string>? log = null, CancellationToken cancel = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var sw = Stopwatch.StartNew();
        root = Path.GetFullPath(root);
        int train = options.Classes * options.TrainPerClass, val = options.Classes * options.ValPerClass;
        UpgradeVersion1(root);
        var parameters = ParametersFor(options);
        if (OwnedFolder.Inspect(root, Generator, parameters) == FolderState.Complete)
        {
            log?.Invoke($"synthetic data in {root} is complete (same parameters); reusing it");
            return new Result(root, train, val, true, sw.Elapsed);
        }
        var manifest = OwnedFolder.Begin(root, Generator, Version, parameters, FilesFor(options), log);

        var jobs = new List<(bool Train, int Class, int Index)>(train + val);
        for (int k = 0; k < options.Classes; k++)
        {
            Directory.CreateDirectory(Path.Combine(root, "train", ClassName(k)));
            if (options.ValPerClass > 0) Directory.CreateDirectory(Path.Combine(root, "val", ClassName(k)));
            for (int i = 0; i < options.TrainPerClass; i++) jobs.Add((true, k, i));
            for (int i = 0; i < options.ValPerClass; i++) jobs.Add((false, k, i));
        }
        Parallel.ForEach(jobs, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount, CancellationToken = cancel }, j =>
        {
            var bytes = RenderImage(options, j.Train, j.Class, j.Index);
            File.WriteAllBytes(Path.Combine(root, j.Train ? "train" : "val", ClassName(j.Class), FileName(j.Class, j.Index)), bytes);
        });
        File.WriteAllText(Path.Combine(root, "README.txt"), Readme(options));
        OwnedFolder.Finish(root, manifest);
        log?.Invoke($"wrote {train} training and {val} validation images ({options.Classes} classes, {options.Size}x{options.Size}) to {root} in {sw.Elapsed.TotalSeconds:F1} s");
        return new Result(root, train, val, false, sw.Elapsed);
    }

    private static JsonObject ParametersFor(Options o) => new()
    {
        ["classes"] = o.Classes,
        ["train_per_class"] = o.TrainPerClass,
        ["val_per_class"] = o.ValPerClass,
        ["size"] = o.Size,
        ["seed"] = o.Seed,
        ["quality"] = o.Quality,
    };

    /// <summary>Every file Generate writes, by folder: what the manifest names before the first is written.</summary>
    private static SortedDictionary<string, List<string>> FilesFor(Options o)
    {
        var files = new SortedDictionary<string, List<string>>(StringComparer.Ordinal) { [""] = ["README.txt"] };
        for (int k = 0; k < o.Classes; k++)
        {
            files[$"train/{ClassName(k)}"] = Enumerable.Range(0, o.TrainPerClass).Select(i => FileName(k, i)).ToList();
            if (o.ValPerClass > 0) files[$"val/{ClassName(k)}"] = Enumerable.Range(0, o.ValPerClass).Select(i => FileName(k, i)).ToList();
        }
        return files;
    }

    // Version 1 wrote manifest.json last, holding the parameters only: it proves that the files
    // those parameters name were written by us, so it is rewritten in the current form (which names them).
    private sealed record ManifestV1(string Generator, int Version, int Classes, int TrainPerClass, int ValPerClass, int Size, int Seed, int Quality);

    private static void UpgradeVersion1(string root)
    {
        var path = Path.Combine(root, OwnedFolder.ManifestName);
        if (!File.Exists(path) || OwnedFolder.ReadManifest(root) is not null) return;
        ManifestV1? v1;
        try { v1 = JsonSerializer.Deserialize<ManifestV1>(ResidualEngine.IO.SafeFile.ReadAllText(path, "manifest")); }
        catch (Exception e) when (e is JsonException or IOException) { return; }
        if (v1 is not { Generator: Generator, Version: 1 }) return;
        var o = new Options(v1.Classes, v1.TrainPerClass, v1.ValPerClass, v1.Size, v1.Seed, v1.Quality);
        try { o.Validate(); }
        catch (ArgumentException) { return; }
        var m = new FolderManifest(Generator, Version, true, ParametersFor(o), FilesFor(o));
        File.WriteAllText(path, JsonSerializer.Serialize(m));
    }

    private static string Readme(Options o) => $"""
        Synthetic ImageNet-style data, written by `residual data synth` ({Generator} v{Version}).

        Layout: train/<class>/*.jpg ({o.TrainPerClass} per class) and val/<class>/*.jpg ({o.ValPerClass} per class),
        {o.Classes} classes, {o.Size}x{o.Size} RGB JPEGs at quality {o.Quality}, seed {o.Seed}.

        Each class is a shape (circles, squares, triangles, stars, rings, crosses, hexagons, crescents,
        diamonds, arrows; classes beyond ten reuse the shapes with another texture), a fill texture
        (solid, stripes, checker, dots, concentric, sweep, gradient) and a hue band that overlaps its
        neighbours' (one object in five takes a random hue instead). A picture holds one object of its class at a random position, size (radius 22-45%
        of the side), rotation and stretch, on a random gradient background with random strokes and
        blobs, next to 1-3 smaller objects of other classes (sometimes over the main object), with
        Gaussian pixel noise (sigma 3-14 levels) and JPEG compression.

        Every picture is drawn from its own random generator seeded by (seed, split, class, index),
        so the same parameters give byte-identical files. manifest.json records the parameters and
        names every file (it is written before them); a later run with the same parameters reuses the
        folder, and one with other parameters deletes exactly those files and writes its own.
        """;
}
