// Symbolic links in an ImageFolder (issue 10, item 5): folders are keyed by their real identity,
// so loops end and are entered once; no file is counted twice; a file is never labelled by a
// folder it was reached through by a link into another class. Links to folders outside the
// dataset still add their images to the class that holds the link.
using NUnit.Framework;
using ResidualEngine.Data;

namespace ResidualEngine.Tests.Data;

public class SymlinkTests
{
    private static readonly byte[] Jpeg = TestImages.Solid(4, 4, 10, 20, 30);

    private static TempDir TwoClasses()
    {
        var d = new TempDir();
        foreach (var c in new[] { "a", "b" })
            for (int i = 0; i < 3; i++) d.Write($"train/{c}/{i}.jpg", Jpeg);
        d.Write("val/a/0.jpg", Jpeg);
        return d;
    }

    private static string[] Listing(ImageFolder f, string root) =>
        f.Samples.Select(s => $"{f.Classes[s.Label]}:{Path.GetRelativePath(root, s.Path).Replace('\\', '/')}").ToArray();

    [Test]
    public void ALoopToTheSplitFolderIsEnteredNeverAndLabelsStay()
    {
        // The probe's case: `loop -> ..` in a class folder listed 48 images as 1,584, labelled as the wrong class.
        using var d = TwoClasses();
        File.CreateSymbolicLink(d.Sub("train", "a", "loop"), "..");
        var f = ImageFolder.Open(d.Sub("train"));
        Assert.That(Listing(f, d.Sub("train")), Is.EqualTo(new[] { "a:a/0.jpg", "a:a/1.jpg", "a:a/2.jpg", "b:b/0.jpg", "b:b/1.jpg", "b:b/2.jpg" }));
        Assert.That(f.Notes, Has.Some.Contains(d.Sub("train", "a", "loop")));
    }

    [Test]
    public void LoopsThatLeadUpAndBackDownEnd()
    {
        // `loop -> ..` plus `up2 -> ../../train` never ended (a run reached 21.6 GB).
        using var d = TwoClasses();
        File.CreateSymbolicLink(d.Sub("train", "a", "loop"), "..");
        File.CreateSymbolicLink(d.Sub("train", "a", "up2"), "../../train");
        File.CreateSymbolicLink(d.Sub("train", "b", "root"), "../..");
        Directory.CreateDirectory(d.Sub("train", "b", "deep"));
        File.CreateSymbolicLink(d.Sub("train", "b", "deep", "self"), ".");
        File.CreateSymbolicLink(d.Sub("train", "b", "deep", "back"), "../../b");
        var f = ImageFolder.Open(d.Sub("train"));
        Assert.That(f.Count, Is.EqualTo(6));
        Assert.That(f.CountsPerClass(), Is.EqualTo(new[] { 3, 3 }));
        var (train, val) = ImageFolder.OpenSplits(d.Path);
        Assert.That((train.Count, val.Count), Is.EqualTo((6, 1)));
    }

    [Test]
    public void ALinkIntoAnotherClassDoesNotRelabelItsFiles()
    {
        using var d = TwoClasses();
        // b is listed after a, so a's link would be walked first if links decided ownership.
        File.CreateSymbolicLink(d.Sub("train", "a", "from-b"), "../b");
        File.CreateSymbolicLink(d.Sub("train", "b", "from-a"), "../a");
        File.CreateSymbolicLink(d.Sub("train", "a", "b-file.jpg"), "../b/1.jpg");
        var f = ImageFolder.Open(d.Sub("train"));
        Assert.That(Listing(f, d.Sub("train")), Is.EqualTo(new[] { "a:a/0.jpg", "a:a/1.jpg", "a:a/2.jpg", "b:b/0.jpg", "b:b/1.jpg", "b:b/2.jpg" }));
    }

    [Test]
    public void LinksOutOfTheDatasetCountOnceUnderTheClassHoldingThem()
    {
        using var d = TwoClasses();
        d.Write("elsewhere/x.jpg", Jpeg);
        d.Write("elsewhere/y.jpg", Jpeg);
        d.Write("single.jpg", Jpeg);
        File.CreateSymbolicLink(d.Sub("train", "b", "more"), d.Sub("elsewhere"));
        File.CreateSymbolicLink(d.Sub("train", "b", "again"), d.Sub("elsewhere"));
        File.CreateSymbolicLink(d.Sub("train", "b", "one.jpg"), d.Sub("single.jpg"));
        File.CreateSymbolicLink(d.Sub("train", "b", "two.jpg"), d.Sub("single.jpg"));
        var f = ImageFolder.Open(d.Sub("train"));
        Assert.That(Listing(f, d.Sub("train")), Is.EqualTo(new[]
        {
            "a:a/0.jpg", "a:a/1.jpg", "a:a/2.jpg",
            "b:b/0.jpg", "b:b/1.jpg", "b:b/2.jpg", "b:b/one.jpg", "b:b/again/x.jpg", "b:b/again/y.jpg",
        }));
        // A class folder that is itself a link (a common way to assemble datasets) is that class.
        File.CreateSymbolicLink(d.Sub("train", "c"), d.Sub("elsewhere"));
        var g = ImageFolder.Open(d.Sub("train"));
        Assert.That(g.CountsPerClass(), Is.EqualTo(new[] { 3, 4, 2 }), "c owns elsewhere/, so b's links to it are not followed");
    }
}
