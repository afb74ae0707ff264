// TensorBoard logs: the CRC32C and its mask against known values; TFRecord framing round trips
// and every kind of damage is named; a training run writes event files whose every record's
// CRCs check out, starting with the file-version event, holding the same train and val numbers
// as metrics.jsonl (which now has wall-clock times and validation rows); a run interrupted and
// resumed has each step once, as an uninterrupted run; --tensorboard false writes none.
using NUnit.Framework;
using ResidualEngine.Training;
using ResidualEngine.Training.TensorBoard;
using ResidualEngine.Training.TensorBoard.Proto;

namespace ResidualEngine.Tests.Tools;

[NonParallelizable]
public class TensorBoardTests
{
    private string _root = "";
    private string _data = "";

    [OneTimeSetUp]
    public void MakeData()
    {
        _root = Directory.CreateTempSubdirectory("tb-").FullName;
        _data = TinyData.Make(_root);
    }

    [OneTimeTearDown]
    public void RemoveData() => Directory.Delete(_root, recursive: true);

    [Test]
    public void Crc32CAndItsMaskAreTensorFlows()
    {
        // The standard check value of CRC-32C (Castagnoli), and RFC 3720's 32 zero bytes / 32 0xFF bytes.
        Assert.That(TfRecord.Crc32C("123456789"u8), Is.EqualTo(0xE3069283u));
        Assert.That(TfRecord.Crc32C(new byte[32]), Is.EqualTo(0x8A9136AAu));
        Assert.That(TfRecord.Crc32C(Enumerable.Repeat((byte)0xFF, 32).ToArray()), Is.EqualTo(0x62A8AB43u));
        Assert.That(TfRecord.Crc32C(Enumerable.Range(0, 32).Select(i => (byte)i).ToArray()), Is.EqualTo(0x46DD794Eu));
        Assert.That(TfRecord.Crc32C([]), Is.EqualTo(0u));
        foreach (var crc in new[] { 0u, 1u, 0xE3069283u, 0xFFFFFFFFu })
            Assert.That(TfRecord.Unmask(TfRecord.Mask(crc)), Is.EqualTo(crc));
        // mask(crc) = rotate right by 15, plus 0xa282ead8 (mod 2^32).
        Assert.That(TfRecord.Mask(1u), Is.EqualTo(unchecked((1u << 17) + 0xa282ead8u)));
    }

    private static byte[] Records(params byte[][] data)
    {
        using var ms = new MemoryStream();
        foreach (var d in data) TfRecord.Write(ms, d);
        return ms.ToArray();
    }

    [Test]
    public void RecordsRoundTripAndDamageIsNamed()
    {
        byte[][] data = [[], "hello"u8.ToArray(), Enumerable.Range(0, 1000).Select(i => (byte)i).ToArray()];
        var file = Records(data);
        Assert.That(file, Has.Length.EqualTo(data.Sum(d => d.Length + 16)));
        Assert.That(TfRecord.Read(new MemoryStream(file)).ToList(), Is.EqualTo(data));

        var flipped = (byte[])file.Clone();
        flipped[16 + 12 + 2] ^= 1; // inside record 1's data
        Assert.That(() => TfRecord.Read(new MemoryStream(flipped)).ToList(), Throws.InstanceOf<FormatException>().With.Message.Contains("TFRecord 1 at byte 16: the data's CRC"));
        var length = (byte[])file.Clone();
        length[16] ^= 4; // record 1's length
        Assert.That(() => TfRecord.Read(new MemoryStream(length)).ToList(), Throws.InstanceOf<FormatException>().With.Message.Contains("TFRecord 1 at byte 16: the length's CRC"));
        Assert.That(() => TfRecord.Read(new MemoryStream(file[..^3])).ToList(), Throws.InstanceOf<FormatException>().With.Message.Contains("TFRecord 2").And.Message.Contains("ends inside the record"));
    }

    /// <summary>Every event of every file of a run, all CRCs checked; with the number of records read.</summary>
    private static List<Event> Events(string dir, out int records)
    {
        var events = new List<Event>();
        records = 0;
        foreach (var f in EventFileWriter.Files(dir))
        {
            using var s = File.OpenRead(f);
            var file = TfRecord.Read(s).Select(r => Event.Parser.ParseFrom(r)).ToList();
            Assert.That(file[0].FileVersion, Is.EqualTo(EventFileWriter.FileVersion), $"{f} starts with the file-version event");
            records += file.Count;
            events.AddRange(file);
        }
        return events;
    }

    private static List<(long Step, float Value)> Series(List<Event> events, string tag) =>
        events.Where(e => e.Summary is not null).SelectMany(e => e.Summary.Value.Where(v => v.Tag == tag).Select(v => (e.Step, v.SimpleValue))).ToList();

    private string[] Args(string run, params string[] more) =>
    [
        "--data", _data, "--model", "resnet20", "--image-size", "16", "--batch-size", "8", "--max-steps-per-epoch", "3",
        "--log-every", "2", "--workers", "1", "--device", "cpu", "--seed", "3", "--out", Path.Combine(_root, run), .. more,
    ];

    [Test]
    public void ARunWritesEventFilesWithTheNumbersOfMetricsJsonl()
    {
        var dir = Path.Combine(_root, "full");
        Assert.That(TrainerTests.Train(Args("full", "--epochs", "2")).Outcome, Is.EqualTo(TrainOutcome.Completed));
        var events = Events(dir, out int records);
        Assert.That(records, Is.EqualTo(events.Count));
        var files = new RunFiles(dir);
        var steps = files.ReadSteps();
        var vals = files.ReadValidations();
        Assert.That(steps.Select(r => r.Step), Is.EqualTo(new long[] { 2, 3, 4, 6 }));
        Assert.That(vals.Select(v => (v.Epoch, v.Step)), Is.EqualTo(new[] { (1, 3L), (2, 6L) }));
        double now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Assert.That(steps.Concat<object>(vals).Select(r => r is StepRow s ? s.WallTime : ((ValRow)r).WallTime), Is.All.InRange(now - 3600, now + 1), "wall-clock times");

        Assert.That(Series(events, "train/loss"), Is.EqualTo(steps.Select(r => (r.Step, (float)r.Loss))));
        Assert.That(Series(events, "train/lr"), Is.EqualTo(steps.Select(r => (r.Step, (float)r.Lr))));
        Assert.That(Series(events, "train/img_per_s").Select(p => p.Step), Is.EqualTo(steps.Select(r => r.Step)));
        Assert.That(Series(events, "val/top1"), Is.EqualTo(vals.Select(v => (v.Step, (float)v.Top1))));
        Assert.That(Series(events, "val/loss"), Is.EqualTo(vals.Select(v => (v.Step, (float)v.Loss))));
        Assert.That(Series(events, "epoch/train_loss"), Has.Count.EqualTo(2));
    }

    [Test]
    public void AResumedRunLogsEachStepOnceAndTensorBoardFalseWritesNothing()
    {
        var cut = Path.Combine(_root, "cut");
        var first = TrainerTests.Train(Args("cut", "--epochs", "2"), (t, stop) => t.AfterStep = (e, s) => { if (e == 2 && s == 2) stop.Request("test"); });
        Assert.That(first.Outcome, Is.EqualTo(TrainOutcome.Interrupted));
        // The interrupted run checkpointed at global step 5 (epoch 2 step 2); a stray later event is added by hand too.
        using (var w = new EventFileWriter(cut)) w.Scalars(99, [("train/loss", 1.0)]);
        Assert.That(TrainerTests.Train(["--resume", cut]).Outcome, Is.EqualTo(TrainOutcome.Completed));
        var events = Events(cut, out _);
        Assert.That(EventFileWriter.Files(cut), Has.Count.EqualTo(3), "one file per process");
        Assert.That(Series(events, "train/loss").Select(p => p.Step), Is.EqualTo(new long[] { 2, 3, 4, 6 }), "each step once, in order");
        Assert.That(Series(events, "val/top1").Select(p => p.Step), Is.EqualTo(new long[] { 3, 6 }));
        Assert.That(new RunFiles(cut).ReadValidations().Select(v => v.Step), Is.EqualTo(new long[] { 3, 6 }));

        Assert.That(TrainerTests.Train(Args("off", "--epochs", "1", "--tensorboard", "false")).Outcome, Is.EqualTo(TrainOutcome.Completed));
        Assert.That(EventFileWriter.Files(Path.Combine(_root, "off")), Is.Empty);
    }

    [Test]
    public void FilesSortInTheOrderTheyWereWritten()
    {
        var dir = Path.Combine(_root, "order");
        var paths = new List<string>();
        for (int i = 0; i < 12; i++)
            using (var w = new EventFileWriter(dir)) paths.Add(w.Path);
        Assert.That(EventFileWriter.Files(dir), Is.EqualTo(paths), "TensorBoard reads them in name order");
    }

    [Test]
    public void ADamagedEventFileIsNamedWhenRead()
    {
        var dir = Path.Combine(_root, "damaged");
        string path;
        using (var w = new EventFileWriter(dir))
        {
            w.Scalars(1, [("a", 1.0), ("b", 2.0)]);
            path = w.Path;
        }
        var bytes = File.ReadAllBytes(path);
        bytes[^6] ^= 0x40;
        File.WriteAllBytes(path, bytes);
        Assert.That(() => EventFileWriter.ReadEvents(path).ToList(), Throws.InstanceOf<FormatException>().With.Message.Contains("TFRecord 1").And.Message.Contains("CRC"));
        // Resuming leaves a file it cannot read as it is.
        EventFileWriter.TruncateAfter(dir, 0);
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(bytes));
    }
}
