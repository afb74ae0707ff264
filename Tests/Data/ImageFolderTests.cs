// ImageFolder: class order (ordinal), labels, recursive listing in torchvision's order,
// extension handling, and clear errors for empty folders and mismatched splits.
using NUnit.Framework;
using ResidualEngine.Data;

namespace ResidualEngine.Tests.Data;

public class ImageFolderTests
{
    private static readonly byte[] Jpeg = TestImages.Solid(4, 4, 10, 20, 30);

    [Test]
    public void ClassesAreSortedOrdinallyAndLabelsArePositions()
    {
        using var d = new TempDir();
        // Ordinal: upper case before '_' before lower case; culture-aware sorting would differ.
        foreach (var c in new[] { "b", "_x", "a", "A", "B10", "B9" }) d.Write($"{c}/img.jpg", Jpeg);
        var f = ImageFolder.Open(d.Path);
        Assert.That(f.Classes, Is.EqualTo(new[] { "A", "B10", "B9", "_x", "a", "b" }));
        foreach (var s in f.Samples)
            Assert.That(f.Classes[s.Label], Is.EqualTo(Path.GetFileName(Path.GetDirectoryName(s.Path))));
    }

    [Test]
    public void FilesAreFoundRecursivelyInTorchvisionOrder()
    {
        using var d = new TempDir();
        // torchvision visits directories sorted by their path, files sorted within each directory;
        // so c/b-c comes between c/b and c/b/deep ('-' < '/'), and a directory's own files come
        // before its sub-folders'. (Order checked against torchvision 0.14's ImageFolder.)
        foreach (var p in new[] { "c/z.jpg", "c/b/x.jpg", "c/b-c/y.jpg", "c/a.jpg", "c/b/deep/w.jpg", "c/B.jpg" })
            d.Write(p, Jpeg);
        var f = ImageFolder.Open(d.Path);
        var rel = f.Samples.Select(s => Path.GetRelativePath(d.Path, s.Path).Replace('\\', '/')).ToArray();
        Assert.That(rel, Is.EqualTo(new[] { "c/B.jpg", "c/a.jpg", "c/z.jpg", "c/b/x.jpg", "c/b-c/y.jpg", "c/b/deep/w.jpg" }));
    }

    [Test]
    public void ExtensionsAreMatchedIgnoringCaseAndOthersIgnored()
    {
        using var d = new TempDir();
        foreach (var p in new[] { "k/a.JPG", "k/b.Jpeg", "k/c.png", "k/d.PNG", "k/e.webp", "k/f.bmp", "k/g.gif" }) d.Write(p, Jpeg);
        foreach (var p in new[] { "k/notes.txt", "k/h.tif", "k/i.jpg.bak", "k/noext" }) d.Write(p, Jpeg);
        var f = ImageFolder.Open(d.Path);
        Assert.That(f.Samples.Select(s => Path.GetFileName(s.Path)),
            Is.EqualTo(new[] { "a.JPG", "b.Jpeg", "c.png", "d.PNG", "e.webp", "f.bmp", "g.gif" }));
        Assert.That(f.CountsPerClass(), Is.EqualTo(new[] { 7 }));
    }

    [Test]
    public void EmptyFoldersGiveErrorsNamingThePath()
    {
        using var d = new TempDir();
        var e1 = Assert.Throws<InvalidDataException>(() => ImageFolder.Open(d.Path));
        Assert.That(e1!.Message, Does.Contain(d.Path).And.Contain("no class folders"));

        Directory.CreateDirectory(d.Sub("empty"));
        d.Write("full/a.jpg", Jpeg);
        d.Write("empty/readme.txt", Jpeg);
        var e2 = Assert.Throws<InvalidDataException>(() => ImageFolder.Open(d.Path));
        Assert.That(e2!.Message, Does.Contain(d.Sub("empty")).And.Contain("no images"));

        var e3 = Assert.Throws<DirectoryNotFoundException>(() => ImageFolder.Open(d.Sub("missing")));
        Assert.That(e3!.Message, Does.Contain(d.Sub("missing")));
    }

    [Test]
    public void SplitsShareTheTrainingClassList()
    {
        using var d = new TempDir();
        foreach (var c in new[] { "cat", "dog", "eel" }) d.Write($"train/{c}/1.jpg", Jpeg);
        d.Write("val/eel/1.jpg", Jpeg);
        d.Write("val/cat/1.jpg", Jpeg);
        var (train, val) = ImageFolder.OpenSplits(d.Path);
        Assert.That(val.Classes, Is.EqualTo(train.Classes));
        Assert.That(val.Samples.Select(s => s.Label), Is.EqualTo(new[] { 0, 2 }), "val labels follow the train list even with a class missing");

        d.Write("val/fox/1.jpg", Jpeg);
        var e = Assert.Throws<InvalidDataException>(() => ImageFolder.OpenSplits(d.Path));
        Assert.That(e!.Message, Does.Contain("fox").And.Contain("training split"));
    }

    [Test]
    public void MissingSplitFolderIsNamed()
    {
        using var d = new TempDir();
        d.Write("train/a/1.jpg", Jpeg);
        var e = Assert.Throws<DirectoryNotFoundException>(() => ImageFolder.OpenSplits(d.Path));
        Assert.That(e!.Message, Does.Contain("val"));
    }
}
