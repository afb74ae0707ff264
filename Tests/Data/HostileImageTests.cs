// Hostile images (issue 10, items 2, 3, 4 and 10, and the non-UTF-8 nit): headers that claim
// huge sizes are refused before anything is allocated, whatever the cap; every failure of one
// file is that file's (named, skipped, counted), never the run's; `data check` lists every bad
// file and exits with 1; FIFOs and links to devices are refused without blocking or reading;
// a file whose name is not UTF-8 is reported as such, not as missing.
using NUnit.Framework;
using ResidualEngine.Data;
using ResidualEngine.IO;
using ResidualEngine.Tools.Commands;

namespace ResidualEngine.Tests.Data;

public class HostileImageTests
{
    [Test]
    public void HugeClaimedSizesNeverReachTheCodec()
    {
        // Item 2: 60000 x 60000 used to overflow int and hand Skia a buffer 14 GB too small (SIGSEGV).
        foreach (var (bytes, name) in new[] { (HostileFiles.PngClaiming(60000, 60000), "bomb.png"), (HostileFiles.JpegClaiming(60000, 60000), "bomb.jpg") })
        {
            var capped = Assert.Throws<InvalidDataException>(() => ImageDecoder.Decode(bytes, name));
            Assert.That(capped!.Message, Does.Contain(name).And.Contain("60000x60000").And.Contain("above the limit of 178,956,970"));
            // With the cap lifted, the 64-bit size check still refuses what no array can hold.
            using var img = EncodedImage.FromBytes(bytes, name, maxPixels: long.MaxValue);
            Assert.That((img.Width, img.Height), Is.EqualTo((60000, 60000)));
            var e = Assert.Throws<InvalidDataException>(() => img.Decode());
            Assert.That(e!.Message, Does.Contain(name).And.Contain("too large to decode"));
        }
        // Item 3: 30000 x 30000 used to throw ArgumentOutOfRangeException from the buffer pool.
        var e30 = Assert.Throws<InvalidDataException>(() => ImageDecoder.Decode(HostileFiles.PngClaiming(30000, 30000), "big.png"));
        Assert.That(e30!.Message, Does.Contain("900,000,000 pixels"));
    }

    [Test]
    public void ThePixelCapIsAnOptionAndAppliesBeforeDecoding()
    {
        var small = TestImages.Solid(20, 10, 1, 2, 3);
        Assert.That(ImageDecoder.Decode(small, "ok.jpg").Width, Is.EqualTo(20));
        var e = Assert.Throws<InvalidDataException>(() => EncodedImage.FromBytes(small, "capped.jpg", maxPixels: 199));
        Assert.That(e!.Message, Does.Contain("capped.jpg: 20x10 = 200 pixels, above the limit of 199").And.Contain("--max-image-pixels"));
        using var exactly = EncodedImage.FromBytes(small, "exact.jpg", maxPixels: 200);
        Assert.That(exactly.Decode().Height, Is.EqualTo(10));
    }

    [Test]
    public void EveryFailureOfOneFileIsANamedSkippedCountedBadFile()
    {
        using var d = new TempDir();
        for (int i = 0; i < 4; i++) d.Write($"c/good{i}.jpg", TestImages.Solid(8, 8, 10, 20, 30));
        d.Write("c/bomb.png", HostileFiles.PngClaiming(30000, 30000));
        d.Write("c/over.jpg", TestImages.Solid(16, 16, 1, 1, 1)); // 256 px, over the cap below
        var folder = ImageFolder.Open(d.Path);
        var messages = new List<string>();
        var data = new ImageFolderDataset(folder, new EvalTransform(8, Normalization.ImageNet)) { MaxPixels = 200 };
        using var loader = new DataLoader(data, new DataLoaderOptions(3, Shuffle: false, Seed: 0, Workers: 1) { Log = m => { lock (messages) messages.Add(m); } });
        int samples = 0;
        foreach (var b in loader.Epoch(0)) using (b) samples += b.Count;
        Assert.That(samples, Is.EqualTo(6), "batch sizes stay constant: bad files are replaced");
        Assert.That(loader.Stats.BadFiles, Is.EqualTo(2));
        Assert.That(loader.Stats.BadFileReasons[d.Sub("c", "bomb.png")], Does.Contain("30000x30000"));
        Assert.That(loader.Stats.BadFileReasons[d.Sub("c", "over.jpg")], Does.Contain("16x16 = 256 pixels, above the limit of 200"));
        Assert.That(messages, Has.Some.Contains("skipping unreadable image " + d.Sub("c", "bomb.png")));

        // Any exception the decoder or transform raises for one file is that file's.
        var throwing = new ImageFolderDataset(folder, new ThrowingTransform());
        int good = folder.Samples.ToList().FindIndex(s => s.Path.EndsWith("good0.jpg", StringComparison.Ordinal));
        var ex = Assert.Throws<SampleLoadException>(() => throwing.GetInto(good, new Random(1), new float[3 * 8 * 8]));
        Assert.That(ex!.Path, Is.EqualTo(folder.Samples[good].Path));
        Assert.That(ex.Reason, Does.Contain("ArgumentOutOfRangeException"));
    }

    private sealed class ThrowingTransform : ITransform
    {
        public int OutputSize => 8;
        public void Apply(IImageSource image, Random rng, Span<float> destination) => throw new ArgumentOutOfRangeException("size", "what a codec threw");
    }

    [Test]
    public void DataCheckListsEveryBadFileWithItsReasonAndExitsWithOne()
    {
        // Item 4: the first InvalidDataException used to escape Parallel.ForEach (rc 134).
        using var d = new TempDir();
        d.Write("train/a/good.jpg", TestImages.Solid(8, 8, 1, 2, 3));
        d.Write("train/a/text.jpg", "not an image at all"u8.ToArray());
        d.Write("train/b/bomb.jpg", HostileFiles.JpegClaiming(60000, 60000));
        var cut = TestImages.Pattern(64, 64);
        d.Write("train/b/cut.jpg", cut[..(cut.Length / 2)]);
        d.Write("train/b/ok.png", TestImages.Pattern(8, 8, SkiaSharp.SKEncodedImageFormat.Png));
        d.Write("val/a/good.jpg", TestImages.Solid(8, 8, 1, 2, 3));
        d.Write("val/b/bomb.png", HostileFiles.PngClaiming(60000, 60000));
        var output = new StringWriter();
        int rc = DataCommand.CheckFolder(d.Path, EncodedImage.DefaultMaxPixels, output);
        var lines = output.ToString().Split('\n').Where(l => l.Contains("unreadable: ", StringComparison.Ordinal)).ToArray();
        Assert.That(rc, Is.EqualTo(1), output.ToString());
        Assert.That(lines, Has.Length.EqualTo(4), output.ToString());
        Assert.That(lines[0], Does.Contain(d.Sub("train", "a", "text.jpg")).And.Contain("not an image"));
        Assert.That(lines[1], Does.Contain(d.Sub("train", "b", "bomb.jpg")).And.Contain("above the limit"));
        Assert.That(lines[2], Does.Contain(d.Sub("train", "b", "cut.jpg")).And.Contain("truncated"));
        Assert.That(lines[3], Does.Contain(d.Sub("val", "b", "bomb.png")).And.Contain("60000x60000"));
        Assert.That(output.ToString(), Does.Contain("4 unreadable files"));

        File.Delete(d.Sub("train", "a", "text.jpg"));
        File.Delete(d.Sub("train", "b", "bomb.jpg"));
        File.Delete(d.Sub("train", "b", "cut.jpg"));
        File.Delete(d.Sub("val", "b", "bomb.png"));
        d.Write("val/b/fine.jpg", TestImages.Solid(8, 8, 1, 2, 3));
        Assert.That(DataCommand.CheckFolder(d.Path, EncodedImage.DefaultMaxPixels, TextWriter.Null), Is.Zero);
    }

    [Test]
    public void FifosAndLinksToDevicesAreRefusedWithoutReading()
    {
        // Item 10: a FIFO named .jpg blocked forever; a link to /dev/zero named .jpg grew without bound.
        using var d = new TempDir();
        d.Write("c/good.jpg", TestImages.Solid(8, 8, 1, 2, 3));
        HostileFiles.MakeFifo(d.Sub("c", "pipe.jpg"));
        File.CreateSymbolicLink(d.Sub("c", "zero.jpg"), "/dev/zero");
        var folder = ImageFolder.Open(d.Path);
        Assert.That(folder.Count, Is.EqualTo(3));
        // Bounded, so that a regression fails instead of hanging the suite.
        var check = Task.Run(() => ImageCheck.Run(folder));
        Assert.That(check.Wait(TimeSpan.FromSeconds(60)), Is.True, "the check blocked on a FIFO or an endless device");
        var bad = check.Result.ToDictionary(b => Path.GetFileName(b.Path), b => b.Reason);
        Assert.That(bad.Keys, Is.EquivalentTo(new[] { "pipe.jpg", "zero.jpg" }));
        Assert.That(bad["pipe.jpg"], Does.Contain("FIFO").And.Contain("not a regular file"));
        Assert.That(bad["zero.jpg"], Does.Contain("character device").And.Contain("not a regular file"));

        var ex = Assert.Throws<IOException>(() => SafeFile.ReadAllText(d.Sub("c", "pipe.jpg"), "config file"));
        Assert.That(ex!.Message, Does.Contain("config file '" + d.Sub("c", "pipe.jpg") + "' is a FIFO"));
        Assert.That(() => SafeFile.ReadAllBytes(d.Sub("c", "good.jpg"), "image", 10), Throws.InstanceOf<IOException>().With.Message.Contains("above the limit of 10 bytes"));
        Assert.That(() => SafeFile.ReadAllBytes(d.Path, "image", 10), Throws.InstanceOf<IOException>().With.Message.Contains("is a folder"));
    }

    [Test]
    public void ANameThatIsNotUtf8IsReportedAsSuchNotAsMissing()
    {
        using var d = new TempDir();
        d.Write("c/good.jpg", TestImages.Solid(8, 8, 1, 2, 3));
        HostileFiles.MakeRawNamedFile(d.Sub("c"), [(byte)'b', 0xFF, 0xFE, (byte)'.', (byte)'j', (byte)'p', (byte)'g']);
        var folder = ImageFolder.Open(d.Path);
        var odd = folder.Samples.Single(s => s.Path.Contains('\uFFFD', StringComparison.Ordinal)).Path;
        var why = ImageCheck.Check(odd);
        Assert.That(why, Does.Contain("not valid UTF-8").And.Contain("rename it"));
        Assert.That(why, Does.Not.Contain("does not exist"));
    }
}
