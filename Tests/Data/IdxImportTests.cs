// `residual data import` of IDX files (MNIST, Fashion-MNIST, KMNIST, EMNIST): the ImageFolder it
// writes (layout, class folders in label order, every pixel and label as in the source), gzip or
// not, EMNIST prefixes, transposition and mapping files, and a clear error for every kind of
// broken file. The files are written by the tests (ImportTestData.cs).
using System.Buffers.Binary;
using NUnit.Framework;
using ResidualEngine.Data;
using ResidualEngine.Data.Import;

namespace ResidualEngine.Tests.Data;

public class IdxImportTests
{
    [TestCase(true)]
    [TestCase(false)]
    public void ImportWritesAnImageFolderWithEveryPixelAndLabel(bool gzip)
    {
        using var d = new TempDir();
        Idx.WriteDataset(d.Sub("src"), train: 300, test: 100, gzip: gzip);
        var r = DatasetImporter.ImportIdx(d.Sub("src"), d.Sub("out"), ClassNames.FashionMnist);
        Assert.That((r.TrainImages, r.ValImages, r.Reused), Is.EqualTo((300, 100, false)));
        var (train, val) = ImageFolder.OpenSplits(d.Sub("out"));
        Assert.That(train.Classes, Is.EqualTo(new[] { "0_T-shirt_top", "1_Trouser", "2_Pullover", "3_Dress", "4_Coat",
            "5_Sandal", "6_Shirt", "7_Sneaker", "8_Bag", "9_Ankle_boot" }));
        Assert.That((train.Count, val.Count), Is.EqualTo((300, 100)));
        foreach (var (folder, count) in new[] { (train, 300), (val, 100) })
        {
            var seen = new HashSet<int>();
            foreach (var s in folder.Samples)
            {
                int n = int.Parse(Path.GetFileNameWithoutExtension(s.Path), System.Globalization.CultureInfo.InvariantCulture);
                Assert.That(seen.Add(n), Is.True);
                // ImageFolder's label (from the sorted folder name) is the IDX label.
                Assert.That(s.Label, Is.EqualTo(Idx.Label(n, 10)), s.Path);
            }
            Assert.That(seen, Is.EquivalentTo(Enumerable.Range(0, count)));
        }
        // Pixels: lossless, gray replicated to RGB by the decoder, rows and columns as in the file.
        foreach (var n in new[] { 0, 1, 57, 299 })
        {
            var img = ImageDecoder.Decode(train.Samples.Single(s => s.Path.EndsWith($"{n:D5}.png", StringComparison.Ordinal)).Path);
            Assert.That((img.Width, img.Height), Is.EqualTo((28, 28)));
            for (int y = 0; y < 28; y++)
                for (int x = 0; x < 28; x++)
                    Assert.That(img.GetPixel(x, y), Is.EqualTo((Idx.Pixel(n, x, y), Idx.Pixel(n, x, y), Idx.Pixel(n, x, y))), $"image {n} pixel ({x}, {y})");
        }
        var manifest = OwnedFolder.ReadManifest(d.Sub("out"))!;
        Assert.That(manifest.Complete, Is.True);
        Assert.That(manifest.FileCount, Is.EqualTo(401), "400 images and README.txt");
        Assert.That(File.ReadAllText(d.Sub("out", "README.txt")), Does.Contain("official test split"));
    }

    [Test]
    public void ClassNamesDefaultToLabelNumbersOrComeFromThePath()
    {
        using var d = new TempDir();
        Idx.WriteDataset(d.Sub("digits"), train: 40, test: 10, classes: 10);
        DatasetImporter.ImportIdx(d.Sub("digits"), d.Sub("a"));
        Assert.That(ImageFolder.Open(d.Sub("a", "train")).Classes, Is.EqualTo(Enumerable.Range(0, 10).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture))));
        Idx.WriteDataset(d.Sub("my-fashion-mnist"), train: 40, test: 10);
        DatasetImporter.ImportIdx(d.Sub("my-fashion-mnist"), d.Sub("b"));
        Assert.That(ImageFolder.Open(d.Sub("b", "train")).Classes[9], Is.EqualTo("9_Ankle_boot"));
        DatasetImporter.ImportIdx(d.Sub("digits"), d.Sub("c"), ClassNames.Resolve("kmnist"));
        Assert.That(ImageFolder.Open(d.Sub("c", "train")).Classes[3], Is.EqualTo("3_tsu"));
        Assert.That(ClassNames.Resolve("a, b ,c"), Is.EqualTo(new[] { "a", "b", "c" }));
        File.WriteAllLines(d.Sub("names.txt"), ["cat", "", "dog"]);
        Assert.That(ClassNames.Resolve(d.Sub("names.txt")), Is.EqualTo(new[] { "cat", "dog" }));
        Assert.Throws<ArgumentException>(() => ClassNames.Resolve("no-such-set"));
    }

    [Test]
    public void EmnistFolderNeedsAPrefixIsTransposedAndUsesItsMapping()
    {
        using var d = new TempDir();
        Idx.WriteDataset(d.Sub("emnist"), train: 60, test: 20, rows: 6, cols: 9, classes: 12, prefix: "emnist-balanced-");
        Idx.WriteDataset(d.Sub("emnist"), train: 30, test: 10, rows: 6, cols: 9, classes: 10, prefix: "emnist-digits-");
        File.WriteAllLines(d.Sub("emnist", "emnist-balanced-mapping.txt"), Enumerable.Range(0, 12).Select(i => $"{i} {(i < 10 ? 48 + i : 65 + i - 10)}"));
        var e = Assert.Throws<ArgumentException>(() => DatasetImporter.ImportIdx(d.Sub("emnist"), d.Sub("out")));
        Assert.That(e!.Message, Does.Contain("--prefix").And.Contain("emnist-balanced").And.Contain("emnist-digits"));
        DatasetImporter.ImportIdx(d.Sub("emnist"), d.Sub("out"), prefix: "emnist-balanced");
        var train = ImageFolder.Open(d.Sub("out", "train"));
        Assert.That(train.Classes, Is.EqualTo(new[] { "00_0", "01_1", "02_2", "03_3", "04_4", "05_5", "06_6", "07_7", "08_8", "09_9", "10_A", "11_B" }));
        // EMNIST stores images transposed: the PNG is 6 wide and 9 high, pixel (x, y) = file (row x, column y).
        var img = ImageDecoder.Decode(train.Samples.Single(s => s.Path.EndsWith("00007.png", StringComparison.Ordinal)).Path);
        Assert.That((img.Width, img.Height), Is.EqualTo((6, 9)));
        for (int y = 0; y < 9; y++)
            for (int x = 0; x < 6; x++)
                Assert.That(img.GetPixel(x, y).R, Is.EqualTo(Idx.Pixel(7, y, x)));
    }

    [Test]
    public void UncompressedCopyIsPreferredWhenBothArePresent()
    {
        using var d = new TempDir();
        Idx.WriteDataset(d.Sub("src"), train: 20, test: 10, gzip: true);
        Idx.WriteDataset(d.Sub("src"), train: 20, test: 10, gzip: false);
        var f = IdxDataset.Find(d.Sub("src"));
        Assert.That(f.All.Select(Path.GetFileName), Is.EqualTo(new[] { "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte" }));
    }

    private static InvalidDataException BadFile(Action<TempDir> corrupt)
    {
        using var d = new TempDir();
        Idx.WriteDataset(d.Sub("src"), train: 50, test: 20, gzip: false);
        corrupt(d);
        var e = Assert.Throws<InvalidDataException>(() => DatasetImporter.ImportIdx(d.Sub("src"), d.Sub("out")));
        Assert.That(Directory.Exists(d.Sub("out")), Is.False, "nothing is written when a source file is bad");
        return e!;
    }

    private static string TrainImages(TempDir d) => d.Sub("src", "train-images-idx3-ubyte");

    [Test]
    public void EveryKindOfBrokenFileGetsAClearError()
    {
        Assert.That(BadFile(d => File.WriteAllText(TrainImages(d), "<html>not found</html>")).Message,
            Does.Contain("train-images-idx3-ubyte").And.Contain("not an IDX file"));
        Assert.That(BadFile(d => File.WriteAllBytes(TrainImages(d), [0, 0])).Message, Does.Contain("shorter than its 4-byte header"));
        Assert.That(BadFile(d => Patch(TrainImages(d), 2, 0x0D)).Message, Does.Contain("0x0D").And.Contain("float32").And.Contain("not supported"));
        Assert.That(BadFile(d => Patch(TrainImages(d), 3, 0)).Message, Does.Contain("0 dimensions"));
        Assert.That(BadFile(d => Truncate(TrainImages(d), 10)).Message, Does.Contain("truncated IDX header"));
        Assert.That(BadFile(d => Truncate(TrainImages(d), 16 + 49 * 784 + 100)).Message,
            Does.Contain("truncated").And.Contain("39,200").And.Contain("38,516"));
        Assert.That(BadFile(d => File.AppendAllText(TrainImages(d), "x")).Message, Does.Contain("longer than its header"));
        Assert.That(BadFile(d => SetDim(TrainImages(d), 0, -5)).Message, Does.Contain("dimension 0 is -5"));
        Assert.That(BadFile(d => SetDim(TrainImages(d), 0, 1_000_000)).Message, Does.Contain("promises 784,000,000 data bytes but the file holds 39,200"));
        Assert.That(BadFile(d => SetDim(TrainImages(d), 0, 100_000_000)).Message, Does.Contain("refusing"));
        Assert.That(BadFile(d => File.WriteAllBytes(d.Sub("src", "train-labels-idx1-ubyte"), Idx.Labels(49, 10))).Message,
            Does.Contain("50 images").And.Contain("49 labels"));
        Assert.That(BadFile(d => File.WriteAllBytes(d.Sub("src", "t10k-labels-idx1-ubyte"), Idx.Images(20, 2, 2))).Message,
            Does.Contain("a label file has 1 dimension"));
        Assert.That(BadFile(d => File.WriteAllBytes(d.Sub("src", "t10k-images-idx3-ubyte"), Idx.Images(20, 27, 28))).Message,
            Does.Contain("28 x 28").And.Contain("27 x 28"));
        Assert.That(BadFile(d => File.Delete(d.Sub("src", "t10k-labels-idx1-ubyte"))).Message, Does.Contain("test labels file").And.Contain("missing"));
    }

    [Test]
    public void CorruptOrTruncatedGzipIsNamed()
    {
        using var d = new TempDir();
        Idx.WriteDataset(d.Sub("src"), train: 50, test: 20, gzip: true);
        var path = d.Sub("src", "train-images-idx3-ubyte.gz");
        var gz = File.ReadAllBytes(path);
        File.WriteAllBytes(path, gz[..(gz.Length / 2)]);
        var e = Assert.Throws<InvalidDataException>(() => DatasetImporter.ImportIdx(d.Sub("src"), d.Sub("out")));
        Assert.That(e!.Message, Does.Contain("train-images-idx3-ubyte.gz (gzip)").And.Contain("truncated"));
        var bad = (byte[])gz.Clone();
        for (int i = 20; i < 60; i++) bad[i] ^= 0x5A;
        File.WriteAllBytes(path, bad);
        e = Assert.Throws<InvalidDataException>(() => DatasetImporter.ImportIdx(d.Sub("src"), d.Sub("out")));
        Assert.That(e!.Message, Does.Contain("train-images-idx3-ubyte.gz"));
    }

    [Test]
    public void LabelsBeyondTheClassNamesOrMissingFromTrainingAreRefused()
    {
        using var d = new TempDir();
        Idx.WriteDataset(d.Sub("src"), train: 50, test: 20, classes: 10, gzip: false);
        var e = Assert.Throws<InvalidDataException>(() => DatasetImporter.ImportIdx(d.Sub("src"), d.Sub("out"), ["a", "b", "c"]));
        Assert.That(e!.Message, Does.Contain("label 9").And.Contain("only 3 class names"));
        File.WriteAllBytes(d.Sub("src", "t10k-labels-idx1-ubyte"), Idx.Labels(20, 10, offset: 5));
        e = Assert.Throws<InvalidDataException>(() => DatasetImporter.ImportIdx(d.Sub("src"), d.Sub("out")));
        Assert.That(e!.Message, Does.Contain("the training split never uses"));
        Assert.That(Directory.Exists(d.Sub("out")), Is.False);
    }

    [Test]
    public void AFolderWithoutIdxFilesIsExplained()
    {
        using var d = new TempDir();
        File.WriteAllText(d.Sub("readme.txt"), "hi");
        var e = Assert.Throws<InvalidDataException>(() => IdxDataset.Find(d.Path));
        Assert.That(e!.Message, Does.Contain("no IDX files").And.Contain("train-images-idx3-ubyte"));
    }

    private static void Patch(string path, int offset, byte value)
    {
        var b = File.ReadAllBytes(path);
        b[offset] = value;
        File.WriteAllBytes(path, b);
    }

    private static void Truncate(string path, int length) => File.WriteAllBytes(path, File.ReadAllBytes(path)[..length]);

    private static void SetDim(string path, int dim, int value)
    {
        var b = File.ReadAllBytes(path);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4 + 4 * dim), value);
        File.WriteAllBytes(path, b);
    }
}
