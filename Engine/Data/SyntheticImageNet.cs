// Writes a synthetic ImageNet-style dataset of real JPEG files in the ImageFolder layout:
// DIR/train/<class>/*.jpg and DIR/val/<class>/*.jpg, plus README.txt and manifest.json.
// Each picture is rendered (SyntheticRenderer) from its own generator seeded by
// (seed, split, class, index), so the files are identical for a seed whatever the number of
// threads. manifest.json is written last: a folder whose manifest matches the request and whose
// files are all there is complete and is reused instead of regenerated.
using System.Diagnostics;
using System.Text.Json;

namespace ResidualEngine.Data;

public static class SyntheticImageNet
{
    private const string Generator = "residual-synthetic-imagenet";
    private const int Version = 1;

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
        var manifest = Path.Combine(root, "manifest.json");
        if (!File.Exists(manifest)) return false;
        try
        {
            var m = JsonSerializer.Deserialize<Manifest>(File.ReadAllText(manifest));
            if (m is null || m != ManifestFor(options)) return false;
        }
        catch (JsonException)
        {
            return false;
        }
        foreach (var (split, per) in new[] { ("train", options.TrainPerClass), ("val", options.ValPerClass) })
            for (int k = 0; k < options.Classes; k++)
            {
                var dir = Path.Combine(root, split, ClassName(k));
                if (per > 0 && !Directory.Exists(dir)) return false;
                for (int i = 0; i < per; i++)
                    if (!File.Exists(Path.Combine(dir, FileName(k, i)))) return false;
            }
        return true;
    }

    /// <summary>
    /// Writes the dataset under <paramref name="root"/>, or reuses it when already complete. A folder
    /// made by an earlier run with other parameters is replaced; any other non-empty folder is refused.
    /// </summary>
    public static Result Generate(string root, Options options, Action<string>? log = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var sw = Stopwatch.StartNew();
        root = Path.GetFullPath(root);
        int train = options.Classes * options.TrainPerClass, val = options.Classes * options.ValPerClass;
        if (IsComplete(root, options))
        {
            log?.Invoke($"synthetic data in {root} is complete (same parameters); reusing it");
            return new Result(root, train, val, true, sw.Elapsed);
        }
        PrepareFolder(root, log);

        var jobs = new List<(bool Train, int Class, int Index)>(train + val);
        for (int k = 0; k < options.Classes; k++)
        {
            Directory.CreateDirectory(Path.Combine(root, "train", ClassName(k)));
            if (options.ValPerClass > 0) Directory.CreateDirectory(Path.Combine(root, "val", ClassName(k)));
            for (int i = 0; i < options.TrainPerClass; i++) jobs.Add((true, k, i));
            for (int i = 0; i < options.ValPerClass; i++) jobs.Add((false, k, i));
        }
        Parallel.ForEach(jobs, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, j =>
        {
            var bytes = RenderImage(options, j.Train, j.Class, j.Index);
            File.WriteAllBytes(Path.Combine(root, j.Train ? "train" : "val", ClassName(j.Class), FileName(j.Class, j.Index)), bytes);
        });
        File.WriteAllText(Path.Combine(root, "README.txt"), Readme(options));
        File.WriteAllText(Path.Combine(root, "manifest.json"),
            JsonSerializer.Serialize(ManifestFor(options), new JsonSerializerOptions { WriteIndented = true }) + "\n");
        log?.Invoke($"wrote {train} training and {val} validation images ({options.Classes} classes, {options.Size}x{options.Size}) to {root} in {sw.Elapsed.TotalSeconds:F1} s");
        return new Result(root, train, val, false, sw.Elapsed);
    }

    private static void PrepareFolder(string root, Action<string>? log)
    {
        if (!Directory.Exists(root) || !Directory.EnumerateFileSystemEntries(root).Any())
        {
            Directory.CreateDirectory(root);
            return;
        }
        var manifest = Path.Combine(root, "manifest.json");
        bool ours = false;
        if (File.Exists(manifest))
        {
            try { ours = JsonSerializer.Deserialize<Manifest>(File.ReadAllText(manifest))?.Generator == Generator; }
            catch (JsonException) { ours = false; }
        }
        // An interrupted run leaves train/val without a manifest: also ours if nothing else is there.
        var names = Directory.EnumerateFileSystemEntries(root).Select(Path.GetFileName).ToHashSet(StringComparer.Ordinal);
        bool onlyOurs = names.All(n => n is "train" or "val" or "manifest.json" or "README.txt");
        if (!ours && !onlyOurs)
            throw new IOException($"'{root}' is not empty and was not made by `residual data synth` (no matching manifest.json); choose a new or empty folder");
        if (!onlyOurs)
            throw new IOException($"'{root}' holds a synthetic dataset with other parameters plus other files; remove it or choose another folder");
        log?.Invoke($"replacing the synthetic data in {root} (different parameters or incomplete)");
        foreach (var sub in new[] { "train", "val" })
            if (Directory.Exists(Path.Combine(root, sub))) Directory.Delete(Path.Combine(root, sub), recursive: true);
        File.Delete(manifest);
    }

    private sealed record Manifest(string Generator, int Version, int Classes, int TrainPerClass, int ValPerClass, int Size, int Seed, int Quality);

    private static Manifest ManifestFor(Options o) =>
        new(Generator, Version, o.Classes, o.TrainPerClass, o.ValPerClass, o.Size, o.Seed, o.Quality);

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
        so the same parameters give byte-identical files. manifest.json records the parameters; a
        later run with the same parameters reuses the folder.
        """;
}
