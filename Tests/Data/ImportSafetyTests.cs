// Data safety of `residual data import` (OwnedFolder): a folder it did not write is refused and
// left byte-for-byte as it was; a repeat import is a no-op; an interrupted import (manifest
// written first, marked incomplete) is recognised and replaced; a file a user added inside an
// imported folder makes it refuse rather than delete anything; another source replaces exactly
// the files the old manifest names. Also the command line: exit codes and messages.
using NUnit.Framework;
using ResidualEngine.Tools.Cli;
using ResidualEngine.Data;
using ResidualEngine.Data.Import;
using ResidualEngine.Tools.Commands;

namespace ResidualEngine.Tests.Data;

public class ImportSafetyTests
{
    private static Dictionary<string, string> Snapshot(string root) =>
        Directory.GetFiles(root, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(root, f), f => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(f))));

    [Test]
    public void AForeignFolderIsRefusedAndUntouched()
    {
        using var d = new TempDir();
        Idx.WriteDataset(d.Sub("src"), train: 30, test: 10);
        // The README's own ImageNet layout, with nothing of ours in it.
        d.Write("photos/train/cat/1.jpg", [1, 2, 3]);
        d.Write("photos/val/cat/2.jpg", [4, 5]);
        var before = Snapshot(d.Sub("photos"));
        var e = Assert.Throws<IOException>(() => DatasetImporter.ImportIdx(d.Sub("src"), d.Sub("photos")));
        Assert.That(e!.Message, Does.Contain("not written by residual-data-import").And.Contain("nothing was changed"));
        Assert.That(Snapshot(d.Sub("photos")), Is.EqualTo(before));
        // A manifest.json that is not ours (another tool's, or garbage) counts as foreign too.
        d.Write("photos/manifest.json", "{\"Generator\": \"someone-else\", \"Version\": 1, \"Complete\": true, \"Parameters\": {}, \"Files\": {}}"u8.ToArray());
        Assert.Throws<IOException>(() => DatasetImporter.ImportIdx(d.Sub("src"), d.Sub("photos")));
        d.Write("photos/manifest.json", "not json"u8.ToArray());
        Assert.Throws<IOException>(() => DatasetImporter.ImportIdx(d.Sub("src"), d.Sub("photos")));
        Assert.That(File.Exists(d.Sub("photos", "train", "cat", "1.jpg")), Is.True);
        // A file, not a folder.
        d.Write("afile", [1]);
        Assert.That(Assert.Throws<IOException>(() => DatasetImporter.ImportIdx(d.Sub("src"), d.Sub("afile")))!.Message, Does.Contain("is a file"));
    }

    [Test]
    public void ARepeatImportIsANoOpAndAnEmptyFolderIsUsed()
    {
        using var d = new TempDir();
        Idx.WriteDataset(d.Sub("src"), train: 30, test: 10);
        Directory.CreateDirectory(d.Sub("out"));
        var first = DatasetImporter.ImportIdx(d.Sub("src"), d.Sub("out"));
        var stamp = File.GetLastWriteTimeUtc(d.Sub("out", "train", first.ClassFolders[0], Directory.GetFiles(d.Sub("out", "train", first.ClassFolders[0]))[0]));
        var before = Snapshot(d.Sub("out"));
        var again = DatasetImporter.ImportIdx(d.Sub("src"), d.Sub("out"));
        Assert.That(again.Reused, Is.True);
        Assert.That((again.TrainImages, again.ValImages), Is.EqualTo((30, 10)));
        Assert.That(again.ClassFolders, Is.EqualTo(first.ClassFolders));
        Assert.That(Snapshot(d.Sub("out")), Is.EqualTo(before));
        Assert.That(File.GetLastWriteTimeUtc(d.Sub("out", "train", first.ClassFolders[0], Directory.GetFiles(d.Sub("out", "train", first.ClassFolders[0]))[0])), Is.EqualTo(stamp));
    }

    [Test]
    public void AnInterruptedImportIsReplaced()
    {
        using var d = new TempDir();
        Idx.WriteDataset(d.Sub("src"), train: 30, test: 10);
        DatasetImporter.ImportIdx(d.Sub("src"), d.Sub("out"));
        // As a kill would leave it: the manifest says incomplete and some images are missing.
        var m = OwnedFolder.ReadManifest(d.Sub("out"))!;
        File.WriteAllText(d.Sub("out", "manifest.json"), System.Text.Json.JsonSerializer.Serialize(m with { Complete = false }));
        var victim = Directory.GetFiles(d.Sub("out", "val"), "*.png", SearchOption.AllDirectories)[0];
        File.Delete(victim);
        Assert.That(OwnedFolder.Inspect(d.Sub("out"), DatasetImporter.Generator, m.Parameters), Is.EqualTo(FolderState.Replaceable));
        var r = DatasetImporter.ImportIdx(d.Sub("src"), d.Sub("out"));
        Assert.That(r.Reused, Is.False);
        Assert.That(File.Exists(victim), Is.True);
        Assert.That(OwnedFolder.ReadManifest(d.Sub("out"))!.Complete, Is.True);
    }

    [Test]
    public void AFileAUserAddedMakesItRefuseAndNothingIsDeleted()
    {
        using var d = new TempDir();
        Idx.WriteDataset(d.Sub("src"), train: 30, test: 10);
        DatasetImporter.ImportIdx(d.Sub("src"), d.Sub("out"));
        var cls = Directory.GetDirectories(d.Sub("out", "train"))[0];
        File.WriteAllText(Path.Combine(cls, "my-notes.txt"), "mine");
        Idx.WriteDataset(d.Sub("src2"), train: 20, test: 10, rows: 14, cols: 14);
        var before = Snapshot(d.Sub("out"));
        var e = Assert.Throws<IOException>(() => DatasetImporter.ImportIdx(d.Sub("src2"), d.Sub("out")));
        Assert.That(e!.Message, Does.Contain("my-notes.txt").And.Contain("did not write"));
        Assert.That(Snapshot(d.Sub("out")), Is.EqualTo(before));
        // A link placed inside is foreign too (never followed, never deleted).
        File.Delete(Path.Combine(cls, "my-notes.txt"));
        File.CreateSymbolicLink(d.Sub("out", "val", "link"), d.Sub("src"));
        e = Assert.Throws<IOException>(() => DatasetImporter.ImportIdx(d.Sub("src2"), d.Sub("out")));
        Assert.That(e!.Message, Does.Contain("val/link"));
        Assert.That(File.Exists(d.Sub("src", "train-images-idx3-ubyte.gz")), Is.True);
    }

    [Test]
    public void AnotherSourceReplacesExactlyTheOldFiles()
    {
        using var d = new TempDir();
        Idx.WriteDataset(d.Sub("src"), train: 30, test: 10, classes: 10);
        DatasetImporter.ImportIdx(d.Sub("src"), d.Sub("out"));
        Idx.WriteDataset(d.Sub("src2"), train: 12, test: 6, rows: 14, cols: 14, classes: 3);
        var r = DatasetImporter.ImportIdx(d.Sub("src2"), d.Sub("out"));
        Assert.That((r.TrainImages, r.ValImages, r.Reused), Is.EqualTo((12, 6, false)));
        var (train, val) = ImageFolder.OpenSplits(d.Sub("out"));
        Assert.That(train.Classes, Is.EqualTo(new[] { "0", "1", "2" }), "the old class folders are gone");
        Assert.That((train.Count, val.Count), Is.EqualTo((12, 6)));
        Assert.That(Directory.GetFiles(d.Sub("out"), "*", SearchOption.AllDirectories), Has.Length.EqualTo(12 + 6 + 2));
    }

    [Test]
    public void ManifestPathsMustStayInsideTheFolder()
    {
        using var d = new TempDir();
        var files = new SortedDictionary<string, List<string>>(StringComparer.Ordinal) { ["../x"] = ["a.png"] };
        Assert.Throws<ArgumentException>(() => OwnedFolder.Begin(d.Sub("o"), "g", 1, [], files));
        files = new(StringComparer.Ordinal) { ["train"] = ["../../etc/passwd"] };
        Assert.Throws<ArgumentException>(() => OwnedFolder.Begin(d.Sub("o"), "g", 1, [], files));
        // A manifest edited to name a file outside is not trusted: the folder counts as foreign-touched.
        Directory.CreateDirectory(d.Sub("o"));
        File.WriteAllText(d.Sub("o", "manifest.json"), "{\"Generator\":\"g\",\"Version\":1,\"Complete\":true,\"Parameters\":{},\"Files\":{\"..\":[\"victim\"]}}");
        File.WriteAllText(d.Sub("victim"), "keep");
        Assert.Throws<IOException>(() => OwnedFolder.Begin(d.Sub("o"), "g", 1, [], new(StringComparer.Ordinal)));
        Assert.That(File.ReadAllText(d.Sub("victim")), Is.EqualTo("keep"));
    }

    [Test]
    public void TheCommandReportsErrorsInOneLineWithExitCodes()
    {
        using var d = new TempDir();
        Idx.WriteDataset(d.Sub("fashion"), train: 30, test: 10);
        var (rc, output, error) = Run("import", "--from", d.Sub("fashion"), "--out", d.Sub("out"));
        Assert.That(rc, Is.EqualTo(0), error);
        Assert.That(output, Does.Contain("30 train + 10 val images").And.Contain("9_Ankle_boot"));
        (rc, output, _) = Run("import", "--from", d.Sub("fashion"), "--out", d.Sub("out"));
        Assert.That((rc, output.Contains("nothing to do", StringComparison.Ordinal)), Is.EqualTo((0, true)));
        File.WriteAllBytes(d.Sub("fashion", "t10k-labels-idx1-ubyte.gz"), [1, 2, 3]);
        (rc, _, error) = Run("import", "--from", d.Sub("fashion"), "--out", d.Sub("out2"));
        Assert.That(rc, Is.EqualTo(1));
        Assert.That(error.Trim(), Does.StartWith("residual data import: error:").And.Contain("t10k-labels-idx1-ubyte.gz"));
        Assert.That(error.Trim().Split('\n'), Has.Length.EqualTo(1));
        Assert.Throws<ArgumentException>(() => Run("import", "--out", d.Sub("x")));
        Assert.Throws<ArgumentException>(() => Run("import", "--from", d.Sub("nowhere"), "--out", d.Sub("x")));
        Assert.Throws<ArgumentException>(() => Run("import", "--from", d.Sub("fashion"), "--out", d.Sub("x"), "--classes", "bogus"));
    }

    private static (int Rc, string Out, string Err) Run(params string[] args) => ConsoleCapture.Run(() => CliApp.Run(["data", .. args]));
}
