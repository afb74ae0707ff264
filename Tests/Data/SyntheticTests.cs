// Synthetic ImageNet-style data: same seed gives identical bytes, the layout is an ImageFolder
// with train/val splits, a complete folder is reused, and `residual data synth` drives it.
using NUnit.Framework;
using ResidualEngine.Tools.Cli;
using ResidualEngine.Data;
using ResidualEngine.Tools.Commands;

namespace ResidualEngine.Tests.Data;

public class SyntheticTests
{
    private static readonly SyntheticImageNet.Options Small = new(Classes: 3, TrainPerClass: 4, ValPerClass: 2, Size: 32, Seed: 11);

    [Test]
    public void SameSeedGivesIdenticalBytesAndOtherSeedsDiffer()
    {
        var a = SyntheticImageNet.RenderImage(Small, train: true, classIndex: 1, index: 2);
        var b = SyntheticImageNet.RenderImage(Small, train: true, classIndex: 1, index: 2);
        Assert.That(b, Is.EqualTo(a));
        Assert.That(SyntheticImageNet.RenderImage(Small with { Seed = 12 }, true, 1, 2), Is.Not.EqualTo(a));
        Assert.That(SyntheticImageNet.RenderImage(Small, false, 1, 2), Is.Not.EqualTo(a), "val differs from train");
        Assert.That(a.AsSpan(0, 3).ToArray(), Is.EqualTo(new byte[] { 0xFF, 0xD8, 0xFF }), "a JPEG");
    }

    [Test]
    public void GenerateWritesAnImageFolderAndReusesIt()
    {
        using var d = new TempDir();
        var root = d.Sub("synth");
        var r = SyntheticImageNet.Generate(root, Small);
        Assert.That((r.TrainImages, r.ValImages, r.Reused), Is.EqualTo((12, 6, false)));
        Assert.That(File.Exists(Path.Combine(root, "README.txt")), Is.True);
        Assert.That(File.ReadAllText(Path.Combine(root, "README.txt")), Does.Contain("seed 11"));

        var (train, val) = ImageFolder.OpenSplits(root);
        Assert.That(train.Classes, Is.EqualTo(new[] { "n0000_circles", "n0001_squares", "n0002_triangles" }));
        Assert.That(train.CountsPerClass(), Is.EqualTo(new[] { 4, 4, 4 }));
        Assert.That(val.CountsPerClass(), Is.EqualTo(new[] { 2, 2, 2 }));
        var img = ImageDecoder.Decode(train.Samples[5].Path);
        Assert.That((img.Width, img.Height), Is.EqualTo((32, 32)));
        // The file is exactly the rendered picture (class 1, index 1 is sample 5).
        Assert.That(File.ReadAllBytes(train.Samples[5].Path), Is.EqualTo(SyntheticImageNet.RenderImage(Small, true, 1, 1)));

        var stamp = File.GetLastWriteTimeUtc(train.Samples[0].Path);
        var again = SyntheticImageNet.Generate(root, Small);
        Assert.That(again.Reused, Is.True);
        Assert.That(File.GetLastWriteTimeUtc(train.Samples[0].Path), Is.EqualTo(stamp));

        // A missing file or other parameters: regenerated.
        File.Delete(val.Samples[0].Path);
        Assert.That(SyntheticImageNet.IsComplete(root, Small), Is.False);
        Assert.That(SyntheticImageNet.Generate(root, Small).Reused, Is.False);
        Assert.That(SyntheticImageNet.IsComplete(root, Small), Is.True);
        var bigger = Small with { Classes = 4, ValPerClass = 1 };
        Assert.That(SyntheticImageNet.Generate(root, bigger).Reused, Is.False);
        Assert.That(ImageFolder.OpenSplits(root).Val.CountsPerClass(), Is.EqualTo(new[] { 1, 1, 1, 1 }));
    }

    [Test]
    public void GenerateRefusesAFolderItDidNotMake()
    {
        using var d = new TempDir();
        d.Write("precious.txt", "keep me"u8.ToArray());
        var e = Assert.Throws<IOException>(() => SyntheticImageNet.Generate(d.Path, Small));
        Assert.That(e!.Message, Does.Contain("not empty"));
        Assert.That(File.Exists(d.Sub("precious.txt")), Is.True);
    }

    private static Dictionary<string, string> Snapshot(string root) =>
        Directory.GetFiles(root, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(root, f), f => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(f))));

    [Test]
    public void GenerateRefusesARealDatasetInTheReadmeLayout()
    {
        // Issue 10, item 1: a folder holding only train/ and val/ (the README's ImageNet layout) was
        // taken for an interrupted synthetic run and both were deleted recursively.
        using var d = new TempDir();
        d.Write("imagenet/train/n01440764/a.JPEG", TestImages.Solid(8, 8, 1, 2, 3));
        d.Write("imagenet/val/n01440764/b.JPEG", TestImages.Solid(8, 8, 3, 2, 1));
        var before = Snapshot(d.Sub("imagenet"));
        var e = Assert.Throws<IOException>(() => SyntheticImageNet.Generate(d.Sub("imagenet"), Small));
        Assert.That(e!.Message, Does.Contain(d.Sub("imagenet")).And.Contain("nothing was changed"));
        Assert.That(Snapshot(d.Sub("imagenet")), Is.EqualTo(before));
        Assert.Throws<IOException>(() => CliApp.Run(["data", "synth", "--out", d.Sub("imagenet"), "--classes", "2"]), "the command refuses too");
        Assert.That(Snapshot(d.Sub("imagenet")), Is.EqualTo(before));
    }

    [Test]
    public void TheManifestComesFirstAndOnlyItsFilesAreEverDeleted()
    {
        using var d = new TempDir();
        var root = d.Sub("synth");
        SyntheticImageNet.Generate(root, Small);
        var manifest = OwnedFolder.ReadManifest(root)!;
        Assert.That(manifest.Complete, Is.True);
        Assert.That(manifest.FileCount, Is.EqualTo(12 + 6 + 1), "every image and the README are named");

        // As a kill leaves it: the manifest (written first) says incomplete, some files are missing.
        File.WriteAllText(Path.Combine(root, "manifest.json"), System.Text.Json.JsonSerializer.Serialize(manifest with { Complete = false }));
        var victim = Path.Combine(root, "val", SyntheticImageNet.ClassName(2), "n0002_00001.jpg");
        File.Delete(victim);
        Assert.That(SyntheticImageNet.IsComplete(root, Small), Is.False);
        Assert.That(SyntheticImageNet.Generate(root, Small).Reused, Is.False);
        Assert.That(File.Exists(victim), Is.True);
        Assert.That(SyntheticImageNet.IsComplete(root, Small), Is.True);

        // A file the user put inside: nothing is deleted, and the message names it.
        var mine = d.Write("synth/train/n0000_circles/mine.jpg", TestImages.Solid(8, 8, 9, 9, 9));
        var before = Snapshot(root);
        var e = Assert.Throws<IOException>(() => SyntheticImageNet.Generate(root, Small with { Seed = 12 }));
        Assert.That(e!.Message, Does.Contain("mine.jpg"));
        Assert.That(Snapshot(root), Is.EqualTo(before));
        File.Delete(mine);

        // Other parameters: the old files go (exactly those), the new set is complete.
        var other = Small with { Classes = 2, TrainPerClass = 1 };
        Assert.That(SyntheticImageNet.Generate(root, other).Reused, Is.False);
        Assert.That(Directory.Exists(Path.Combine(root, "train", SyntheticImageNet.ClassName(2))), Is.False, "its emptied folder went too");
        Assert.That(Snapshot(root).Keys.Where(k => k.EndsWith(".jpg", StringComparison.Ordinal)).Count(), Is.EqualTo(2 + 4));
    }

    [Test]
    public void ASetWrittenByVersionOneIsStillRecognised()
    {
        // Version 1 wrote a parameters-only manifest last; its files are derived from the parameters.
        using var d = new TempDir();
        var root = d.Sub("old");
        SyntheticImageNet.Generate(root, Small);
        File.WriteAllText(Path.Combine(root, "manifest.json"), """
            {"Generator":"residual-synthetic-imagenet","Version":1,"Classes":3,"TrainPerClass":4,"ValPerClass":2,"Size":32,"Seed":11,"Quality":90}
            """);
        Assert.That(SyntheticImageNet.Generate(root, Small).Reused, Is.True);
        File.WriteAllText(Path.Combine(root, "manifest.json"), """
            {"Generator":"residual-synthetic-imagenet","Version":1,"Classes":3,"TrainPerClass":4,"ValPerClass":2,"Size":32,"Seed":11,"Quality":90}
            """);
        Assert.That(SyntheticImageNet.Generate(root, Small with { Seed = 3 }).Reused, Is.False);
        Assert.That(SyntheticImageNet.IsComplete(root, Small with { Seed = 3 }), Is.True);
    }

    [Test]
    public void ClassNamesSortInClassOrder()
    {
        var names = Enumerable.Range(0, 25).Select(SyntheticImageNet.ClassName).ToArray();
        Assert.That(names[0], Is.EqualTo("n0000_circles"));
        Assert.That(names.Order(StringComparer.Ordinal), Is.EqualTo(names));
        Assert.That(names.Distinct().Count(), Is.EqualTo(25));
    }

    [Test]
    public void DataCommandWritesTheDataset()
    {
        using var d = new TempDir();
        var root = d.Sub("cmd");
        int rc = CliApp.Run(["data", "synth", "--out", root, "--classes", "2", "--train-per-class", "3", "--val-per-class", "1", "--size", "16", "--seed", "5"]);
        Assert.That(rc, Is.Zero);
        var (train, val) = ImageFolder.OpenSplits(root);
        Assert.That((train.Count, val.Count), Is.EqualTo((6, 2)));
        Assert.That(File.ReadAllBytes(train.Samples[0].Path),
            Is.EqualTo(SyntheticImageNet.RenderImage(new(2, 3, 1, 16, 5), true, 0, 0)));
        Assert.That(CliApp.Run(["data", "check", "--root", root]), Is.Zero);
        using var err = new StringWriter();
        Assert.That(CliApp.Run(["data", "synth", "--out", root, "--colour", "red"], TextWriter.Null, err), Is.EqualTo(2));
        Assert.That(err.ToString(), Does.Contain("--colour"));
        Assert.That(CliApp.Run(["data", "synth", "--classes", "3"], TextWriter.Null, TextWriter.Null), Is.EqualTo(2), "--out is required");
    }
}
