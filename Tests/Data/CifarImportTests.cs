// `residual data import` of CIFAR-10: the binary and the python version, as .tar.gz archives and
// as extracted folders, give the same ImageFolder (pixels planar RGB -> PNG, labels, class names
// from batches.meta / batches.meta.txt); the pickle reader reads real numpy pickles of protocols 2
// and 5 (fixtures made by Tests/Fixtures/data/make_cifar_fixture.py) and refuses anything that would
// run code; truncated and malformed batches get clear errors.
using NUnit.Framework;
using ResidualEngine.Data;
using ResidualEngine.Data.Import;

namespace ResidualEngine.Tests.Data;

public class CifarImportTests
{
    private const int PerBatch = 4;

    private static void CheckFolder(string root, IReadOnlyList<string> expectedClasses)
    {
        var (train, val) = ImageFolder.OpenSplits(root);
        Assert.That(train.Classes, Is.EqualTo(expectedClasses));
        Assert.That((train.Count, val.Count), Is.EqualTo((5 * PerBatch, PerBatch)));
        foreach (var (folder, first) in new[] { (train, 0), (val, 1000) })
            foreach (var s in folder.Samples)
            {
                int i = int.Parse(Path.GetFileNameWithoutExtension(s.Path), System.Globalization.CultureInfo.InvariantCulture);
                int n = first + i;
                Assert.That(s.Label, Is.EqualTo(Cifar.Label(n)), s.Path);
                var img = ImageDecoder.Decode(s.Path);
                Assert.That((img.Width, img.Height), Is.EqualTo((32, 32)));
                foreach (var (x, y) in new[] { (0, 0), (31, 0), (5, 17), (31, 31) })
                    Assert.That(img.GetPixel(x, y), Is.EqualTo((Cifar.Pixel(n, 0, y * 32 + x), Cifar.Pixel(n, 1, y * 32 + x), Cifar.Pixel(n, 2, y * 32 + x))), $"{s.Path} ({x}, {y})");
            }
    }

    [TestCase(true)]
    [TestCase(false)]
    public void ArchivesAndFoldersOfBothVersionsGiveTheSameImageFolder(bool binary)
    {
        using var d = new TempDir();
        var files = Cifar.Batches(binary, PerBatch);
        string[] names = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
        files.Add(binary ? ("batches.meta.txt", System.Text.Encoding.ASCII.GetBytes(string.Join("\n", names) + "\n\n")) : ("batches.meta", Cifar.MetaPickle(names)));
        var folder = binary ? "cifar-10-batches-bin" : "cifar-10-batches-py";
        var archive = d.Sub(binary ? "cifar-10-binary.tar.gz" : "cifar-10-python.tar.gz");
        Cifar.Tar(archive, folder, files);
        Assert.That(CifarArchive.Recognises(archive), Is.True);
        var r = DatasetImporter.ImportCifar10(archive, d.Sub("from-archive"));
        Assert.That((r.TrainImages, r.ValImages), Is.EqualTo((20, 4)));
        var expected = names.Select((n, i) => $"{i}_{n}").Where((_, i) => Enumerable.Range(0, 20).Any(k => Cifar.Label(k) == i)).ToList();
        CheckFolder(d.Sub("from-archive"), expected);

        foreach (var (n, b) in files) d.Write($"extracted/{folder}/{n}", b);
        Assert.That(CifarArchive.Recognises(d.Sub("extracted")), Is.True);
        DatasetImporter.ImportCifar10(d.Sub("extracted"), d.Sub("from-folder"));
        CheckFolder(d.Sub("from-folder"), expected);
        // An uncompressed tar works too, and without the meta file the CIFAR page's names are used.
        Cifar.Tar(d.Sub("plain.tar"), folder, files.Where(f => !f.Name.StartsWith("batches", StringComparison.Ordinal)), gzip: false);
        DatasetImporter.ImportCifar10(d.Sub("plain.tar"), d.Sub("from-tar"));
        Assert.That(ImageFolder.Open(d.Sub("from-tar", "train")).Classes[0], Is.EqualTo("0_airplane"));
    }

    [TestCase("cifar_batch_protocol2.pkl")]
    [TestCase("cifar_batch_protocol5.pkl")]
    public void RealNumpyPicklesAreRead(string fixture)
    {
        // Made by numpy 1.24 / Python 3.11 pickle.dump of {b'labels': [...], b'data': uint8 array (3, 3072), ...}.
        var split = CifarArchive.Python(File.ReadAllBytes(TestImages.Fixture(fixture)), fixture);
        Assert.That(split.Labels, Is.EqualTo(new byte[] { 3, 8, 0 }));
        Assert.That(split.Pixels, Has.Length.EqualTo(3 * 3072));
        for (int i = 0; i < split.Pixels.Length; i++)
            if (split.Pixels[i] != (byte)((i * 7 + i / 3072) % 256)) Assert.Fail($"{fixture}: byte {i} is {split.Pixels[i]}");
    }

    [Test]
    public void APickleThatWouldRunCodeIsRefused()
    {
        // cos\nsystem\n(S'echo pwned'\ntR. : what a malicious "batch" looks like.
        var p = new PickleBytes().Op(0x80, 2).Global("os", "system").Op('(').ShortBinString("touch /tmp/pwned").Op('t').Op('R').Op('.').ToArray();
        var e = Assert.Throws<InvalidDataException>(() => SafePickle.Load(p, "evil"));
        Assert.That(e!.Message, Does.Contain("os.system").And.Contain("only reads data"));
        var builtins = new PickleBytes().Op(0x80, 2).Global("builtins", "eval").Op('.').ToArray();
        Assert.Throws<InvalidDataException>(() => SafePickle.Load(builtins, "evil"));
        // An allowed callable with the wrong arguments is refused as well (numpy.dtype of a non-string).
        var odd = new PickleBytes().Op(0x80, 2).Global("numpy", "dtype").Op('(').Op('N').Op('t').Op('R').Op('.').ToArray();
        Assert.Throws<InvalidDataException>(() => SafePickle.Load(odd, "odd"));
        // Opcodes outside the data subset (INST, OBJ, EXT1, PERSID) are refused by name.
        Assert.That(Assert.Throws<InvalidDataException>(() => SafePickle.Load(new byte[] { 0x80, 2, (byte)'i' }, "x"))!.Message, Does.Contain("0x69"));
        Assert.That(Assert.Throws<InvalidDataException>(() => SafePickle.Load(new byte[] { 0x80, 2, 0x82, 1 }, "x"))!.Message, Does.Contain("0x82"));
    }

    [Test]
    public void BrokenBatchesGetClearErrors()
    {
        var good = Cifar.Python2Pickle(0, 3);
        Assert.That(Assert.Throws<InvalidDataException>(() => CifarArchive.Python(good[..(good.Length - 100)], "b"))!.Message,
            Does.Contain("b:").And.Contain("truncated"));
        Assert.That(Assert.Throws<InvalidDataException>(() => CifarArchive.Python(good[..^1], "b"))!.Message, Does.Contain("STOP"));
        Assert.That(Assert.Throws<InvalidDataException>(() => CifarArchive.Binary(Cifar.Binary(0, 3)[..^5], "bin"))!.Message,
            Does.Contain("not a whole number of 3073-byte"));
        var badLabel = Cifar.Binary(0, 2);
        badLabel[3073] = 10;
        Assert.That(Assert.Throws<InvalidDataException>(() => CifarArchive.Binary(badLabel, "bin"))!.Message, Does.Contain("record 1 has label 10"));
        var list = new PickleBytes().Op(0x80, 2).Op(']').Op('.').ToArray();
        Assert.That(Assert.Throws<InvalidDataException>(() => CifarArchive.Python(list, "l"))!.Message, Does.Contain("does not hold a dict"));
        // A CIFAR-100 batch (fine_labels, no labels) is named as such.
        var c100 = new PickleBytes().Op(0x80, 2).Op('}').Op('(').ShortBinString("fine_labels").Op(']').ShortBinString("data").Op('N').Op('u').Op('.').ToArray();
        Assert.That(Assert.Throws<InvalidDataException>(() => CifarArchive.Python(c100, "c100"))!.Message, Does.Contain("CIFAR-100"));
    }

    [Test]
    public void MissingBatchesAndBadArchivesAreNamed()
    {
        using var d = new TempDir();
        var files = Cifar.Batches(binary: true, PerBatch).Where(f => f.Name != "data_batch_3.bin").ToList();
        Cifar.Tar(d.Sub("cifar-10-binary.tar.gz"), "cifar-10-batches-bin", files);
        var e = Assert.Throws<InvalidDataException>(() => DatasetImporter.ImportCifar10(d.Sub("cifar-10-binary.tar.gz"), d.Sub("out")));
        Assert.That(e!.Message, Does.Contain("data_batch_3.bin").And.Contain("missing"));
        File.WriteAllBytes(d.Sub("cifar-10-python.tar.gz"), Idx.Gzip("this is not a tar archive at all, just text that goes on"u8.ToArray()));
        e = Assert.Throws<InvalidDataException>(() => DatasetImporter.ImportCifar10(d.Sub("cifar-10-python.tar.gz"), d.Sub("out")));
        Assert.That(e!.Message, Does.Contain("cifar-10-python.tar.gz"));
        Assert.That(Directory.Exists(d.Sub("out")), Is.False);
    }
}
