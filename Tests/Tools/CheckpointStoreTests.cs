// Checkpoint pairs: atomic saves (a writer that dies half-way leaves the previous checkpoint
// loadable and no temp file), leftover temp files from a crash are ignored and cleaned up, a
// torn pair (JSON not describing the tensors beside it) is detected, and best/last resolution.
using System.Text;
using NUnit.Framework;
using ResidualEngine.Training;

namespace ResidualEngine.Tests.Tools;

public class CheckpointStoreTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("ckpt-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    // A stand-in serializer: names and float values as text (the real one is SafeTensors.Write).
    private static void TextWriter(Stream s, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? meta)
    {
        foreach (var (k, t) in tensors)
        {
            var b = Encoding.UTF8.GetBytes(k + ":" + string.Join(",", t.ToFloats()) + "\n");
            s.Write(b);
        }
    }

    private static KeyValuePair<string, Tensor>[] State(float v) =>
        [new("w", Tensor.FromArray(new[] { v, v + 1, v + 2 }, 3)), new("optimizer.w.momentum", Tensor.FromArray(new[] { -v }, 1))];

    private static CheckpointInfo Info(int epoch) => new() { Model = "tiny", NumClasses = 3, Epoch = epoch, GlobalStep = 10 * epoch, Schedule = null };

    [Test]
    public void SaveWritesAVerifiedPair()
    {
        using var scope = TensorScope.Begin();
        var store = new CheckpointStore(_dir, TextWriter);
        var info = Info(2);
        info.History.Add(new EpochRow(1, 2.25, 0.125, 2.5, 0.1, 0.5, 0.1, 3.5));
        info.Partial = new EpochSums { LossSum = 1.0 / 3, Correct = 4, Samples = 9 };
        store.Save("last", State(1), info);

        var back = CheckpointStore.LoadInfo(store.TensorsPath("last"));
        Assert.That(back, Is.Not.Null);
        Assert.That(back!.Epoch, Is.EqualTo(2));
        Assert.That(back.GlobalStep, Is.EqualTo(20));
        Assert.That(back.History.Single(), Is.EqualTo(info.History[0]), "doubles survive JSON exactly");
        Assert.That(back.Partial!.LossSum, Is.EqualTo(1.0 / 3), "bitwise");
        Assert.That(back.TensorsBytes, Is.EqualTo(new FileInfo(store.TensorsPath("last")).Length));
        Assert.That(back.TensorsSha256, Is.EqualTo(CheckpointStore.HashFile(store.TensorsPath("last"))));
        Assert.That(Directory.GetFiles(_dir).Select(Path.GetFileName), Is.EquivalentTo(new[] { "last.safetensors", "last.json" }));
    }

    [Test]
    public void AWriterDyingMidSaveLeavesThePreviousCheckpointIntact()
    {
        using var scope = TensorScope.Begin();
        new CheckpointStore(_dir, TextWriter).Save("last", State(1), Info(1));
        var before = File.ReadAllBytes(Path.Combine(_dir, "last.safetensors"));
        var beforeJson = File.ReadAllText(Path.Combine(_dir, "last.json"));

        var dying = new CheckpointStore(_dir, (s, t, m) =>
        {
            s.Write(new byte[4096]);
            throw new IOException("disk pulled out mid-write");
        });
        Assert.That(() => dying.Save("last", State(2), Info(2)), Throws.TypeOf<IOException>().With.Message.Contains("disk pulled out"));

        Assert.That(File.ReadAllBytes(Path.Combine(_dir, "last.safetensors")), Is.EqualTo(before));
        Assert.That(File.ReadAllText(Path.Combine(_dir, "last.json")), Is.EqualTo(beforeJson));
        Assert.That(CheckpointStore.LoadInfo(Path.Combine(_dir, "last.safetensors"))!.Epoch, Is.EqualTo(1));
        Assert.That(Directory.GetFiles(_dir), Has.Length.EqualTo(2), "the temp file was removed");
    }

    [Test]
    public void LeftoverTempFilesAreIgnoredAndCleanedUp()
    {
        using var scope = TensorScope.Begin();
        var store = new CheckpointStore(_dir, TextWriter);
        store.Save("last", State(1), Info(1));
        // What a killed process leaves: a half-written temp file beside the good pair.
        var stray = Path.Combine(_dir, "last.safetensors" + AtomicFile.TempMarker + "999-deadbeef");
        File.WriteAllBytes(stray, new byte[123]);

        Assert.That(CheckpointStore.Resolve(_dir, preferBest: false), Is.EqualTo(Path.Combine(_dir, "last.safetensors")));
        Assert.That(CheckpointStore.LoadInfo(CheckpointStore.Resolve(_dir, false))!.Epoch, Is.EqualTo(1));
        Assert.That(() => CheckpointStore.Resolve(stray, false), Throws.TypeOf<CheckpointException>().With.Message.Contains("temporary"));

        store.Save("last", State(2), Info(2));
        Assert.That(File.Exists(stray), Is.False, "the next save of that checkpoint removes it");
        Assert.That(CheckpointStore.LoadInfo(store.TensorsPath("last"))!.Epoch, Is.EqualTo(2));
    }

    [Test]
    public void ATornPairIsDetected()
    {
        using var scope = TensorScope.Begin();
        var store = new CheckpointStore(_dir, TextWriter);
        store.Save("last", State(1), Info(1));
        var json = File.ReadAllText(store.InfoPath("last"));
        store.Save("last", State(5), Info(2));
        // A crash after the tensors were renamed but before the JSON was: old JSON, new tensors.
        File.WriteAllText(store.InfoPath("last"), json);
        Assert.That(() => CheckpointStore.LoadInfo(store.TensorsPath("last")),
            Throws.TypeOf<CheckpointException>().With.Message.Contains("does not match"));

        // Same length, different bytes: the hash catches it.
        store.Save("last", State(1), Info(1));
        var bytes = File.ReadAllBytes(store.TensorsPath("last"));
        bytes[^2] ^= 1;
        File.WriteAllBytes(store.TensorsPath("last"), bytes);
        Assert.That(() => CheckpointStore.LoadInfo(store.TensorsPath("last")),
            Throws.TypeOf<CheckpointException>().With.Message.Contains("sha256"));
    }

    [Test]
    public void BestIsACopyOfLastAndResolutionPrefersWhatWasAskedFor()
    {
        using var scope = TensorScope.Begin();
        var store = new CheckpointStore(_dir, TextWriter);
        Assert.That(() => CheckpointStore.Resolve(_dir, true), Throws.TypeOf<CheckpointException>().With.Message.Contains("no checkpoint"));
        store.Save("last", State(1), Info(1));
        Assert.That(CheckpointStore.Resolve(_dir, preferBest: true), Does.EndWith("last.safetensors"), "falls back to last");
        store.Copy("last", "best");
        store.Save("last", State(2), Info(2));
        Assert.That(CheckpointStore.Resolve(_dir, preferBest: true), Does.EndWith("best.safetensors"));
        Assert.That(CheckpointStore.LoadInfo(store.TensorsPath("best"))!.Epoch, Is.EqualTo(1));
        Assert.That(CheckpointStore.LoadInfo(store.TensorsPath("last"))!.Epoch, Is.EqualTo(2));
        Assert.That(CheckpointStore.Resolve(store.InfoPath("best"), false), Does.EndWith("best.safetensors"), "a .json path names its pair");
        Assert.That(() => CheckpointStore.Resolve(Path.Combine(_dir, "nope.safetensors"), false), Throws.TypeOf<CheckpointException>());
    }
}
