// Checkpoints (issue 10, item 8): one self-describing safetensors file per checkpoint, written by
// one rename (a writer dying half-way leaves the previous checkpoint whole and no temp file);
// damage (a flipped byte, a truncation, a hand edit that nulls a field) is detected and named;
// resuming a run directory takes the newest intact checkpoint (last, previous, best) and says
// which; a failing fsync is an error, not a silent loss; checkpoints of the earlier two-file
// format still load. Also AtomicFile's temp files: only a dead writer's are ever removed (item 7).
using System.Diagnostics;
using Microsoft.Win32.SafeHandles;
using NUnit.Framework;
using ResidualEngine.IO;
using ResidualEngine.Serialization;
using ResidualEngine.Training;

namespace ResidualEngine.Tests.Tools;

public class CheckpointStoreTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("ckpt-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static KeyValuePair<string, Tensor>[] State(float v) =>
        [new("w", Tensor.FromArray(new[] { v, v + 1, v + 2 }, 3)), new("optimizer.w.momentum", Tensor.FromArray(new[] { -v }, 1))];

    private static CheckpointInfo Info(int epoch) => new() { Model = "tiny", NumClasses = 3, Epoch = epoch, GlobalStep = 10 * epoch, Schedule = null };

    private static readonly Dictionary<string, string> Meta = new() { ["format"] = "pt", ["residual.model"] = "tiny" };

    private string[] Files() => Directory.GetFiles(_dir).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;

    [Test]
    public void SaveWritesOneSelfDescribingFile()
    {
        using var scope = TensorScope.Begin();
        var store = new CheckpointStore(_dir);
        var info = Info(2);
        info.History.Add(new EpochRow(1, 2.25, 0.125, 2.5, 0.1, 0.5, 0.1, 3.5));
        info.Partial = new EpochSums { LossSum = 1.0 / 3, Correct = 4, Samples = 9 };
        info.Config = new System.Text.Json.Nodes.JsonObject { ["lr"] = 0.1 };
        store.Save("last", State(1), info, Meta);
        Assert.That(Files(), Is.EqualTo(new[] { "last.safetensors" }), "one file, no .json beside it");

        var back = CheckpointStore.LoadInfo(store.TensorsPath("last"))!;
        Assert.That((back.Epoch, back.GlobalStep), Is.EqualTo((2, 20L)));
        Assert.That(back.History.Single(), Is.EqualTo(info.History[0]), "doubles survive JSON exactly");
        Assert.That(back.Partial!.LossSum, Is.EqualTo(1.0 / 3), "bitwise");
        Assert.That(back.Config!["lr"]!.GetValue<double>(), Is.EqualTo(0.1));
        // Still plain safetensors: other readers see the tensors and the caller's metadata.
        using var f = SafeTensors.Load(store.TensorsPath("last"));
        Assert.That(f.Tensors.Keys, Is.EqualTo(new[] { "w", "optimizer.w.momentum" }));
        Assert.That(f.Metadata["residual.model"], Is.EqualTo("tiny"));
        Assert.That(f.Metadata[CheckpointStore.DigestKey], Has.Length.EqualTo(64).And.Not.EqualTo(new string('0', 64)));
        Assert.That(() => store.Save("last", State(1), Info(3), new Dictionary<string, string> { [CheckpointStore.InfoKey] = "x" }), Throws.ArgumentException);
    }

    [Test]
    public void AWriterDyingMidSaveLeavesThePreviousCheckpointIntact()
    {
        using var scope = TensorScope.Begin();
        new CheckpointStore(_dir).Save("last", State(1), Info(1));
        var before = File.ReadAllBytes(Path.Combine(_dir, "last.safetensors"));
        var dying = new CheckpointStore(_dir, (s, t, m) =>
        {
            s.Write(new byte[4096]);
            throw new IOException("disk pulled out mid-write");
        });
        Assert.That(() => dying.Save("last", State(2), Info(2)), Throws.TypeOf<IOException>().With.Message.Contains("disk pulled out"));
        Assert.That(File.ReadAllBytes(Path.Combine(_dir, "last.safetensors")), Is.EqualTo(before));
        Assert.That(CheckpointStore.LoadInfo(Path.Combine(_dir, "last.safetensors"))!.Epoch, Is.EqualTo(1));
        Assert.That(Files(), Is.EqualTo(new[] { "last.safetensors" }), "the temp file was removed, and last was not moved to previous");
        // A writer that ignores the metadata cannot produce a checkpoint without its state.
        var forgetful = new CheckpointStore(_dir, (s, t, m) => SafeTensors.Write(s, t));
        Assert.That(() => forgetful.Save("last", State(2), Info(2)), Throws.InvalidOperationException);
        Assert.That(File.ReadAllBytes(Path.Combine(_dir, "last.safetensors")), Is.EqualTo(before));
    }

    [Test]
    public void DamageIsDetectedAndNamed()
    {
        using var scope = TensorScope.Begin();
        var store = new CheckpointStore(_dir);
        store.Save("last", State(1), Info(1));
        var path = store.TensorsPath("last");
        var good = File.ReadAllBytes(path);

        var flipped = (byte[])good.Clone();
        flipped[^2] ^= 1;
        File.WriteAllBytes(path, flipped);
        Assert.That(() => CheckpointStore.LoadInfo(path), Throws.TypeOf<CheckpointException>().With.Message.Contains("damaged").And.Message.Contains("digest"));
        Assert.That(() => CheckpointStore.Load(path), Throws.TypeOf<CheckpointException>());

        File.WriteAllBytes(path, good[..^5]);
        Assert.That(() => CheckpointStore.LoadInfo(path), Throws.TypeOf<CheckpointException>().With.Message.Contains(path).And.Message.Contains("damaged"));

        // A hand edit that nulls the class list used to end in a NullReferenceException.
        var edited = new CheckpointStore(_dir, (s, t, m) =>
        {
            var m2 = m!.ToDictionary();
            m2[CheckpointStore.InfoKey] = m2[CheckpointStore.InfoKey].Replace("\"classes\":[]", "\"classes\":null", StringComparison.Ordinal);
            SafeTensors.Write(s, t, m2);
        });
        edited.Save("last", State(1), Info(1));
        Assert.That(() => CheckpointStore.LoadInfo(path), Throws.TypeOf<CheckpointException>().With.Message.Contains("classes is missing"));
    }

    [Test]
    public void ResumeTakesTheNewestIntactCheckpointAndSaysWhich()
    {
        using var scope = TensorScope.Begin();
        var store = new CheckpointStore(_dir);
        Assert.That(() => CheckpointStore.FindForResume(_dir), Throws.TypeOf<CheckpointException>().With.Message.Contains($"--out {_dir}"));
        store.Save("last", State(1), Info(1));
        store.Copy("last", "best");
        store.Save("last", State(2), Info(2));
        Assert.That(Files(), Is.EqualTo(new[] { "best.safetensors", "last.safetensors", "previous.safetensors" }));
        var (path, info, note) = CheckpointStore.FindForResume(_dir);
        Assert.That((Path.GetFileName(path), info.Epoch, note), Is.EqualTo(("last.safetensors", 2, (string?)null)));

        // last torn (what a kill between two renames did to the old pair): previous is the newest intact one.
        File.WriteAllBytes(store.TensorsPath("last"), File.ReadAllBytes(store.TensorsPath("last"))[..100]);
        (path, info, note) = CheckpointStore.FindForResume(_dir);
        Assert.That((Path.GetFileName(path), info.Epoch), Is.EqualTo(("previous.safetensors", 1)));
        Assert.That(note, Does.Contain("last.safetensors").And.Contain("damaged").And.Contain("Resuming from previous.safetensors"));

        // A kill between "last -> previous" and "temp -> last" leaves no last at all.
        File.Delete(store.TensorsPath("last"));
        File.WriteAllBytes(store.TensorsPath("last") + AtomicFile.TempMarker + "999999-0badf00d", new byte[10]);
        Assert.That(Path.GetFileName(CheckpointStore.FindForResume(_dir).Path), Is.EqualTo("previous.safetensors"));

        File.WriteAllBytes(store.TensorsPath("previous"), new byte[3]);
        Assert.That(Path.GetFileName(CheckpointStore.FindForResume(_dir).Path), Is.EqualTo("best.safetensors"));
        File.WriteAllBytes(store.TensorsPath("best"), new byte[3]);
        Assert.That(() => CheckpointStore.FindForResume(_dir), Throws.TypeOf<CheckpointException>()
            .With.Message.Contains("no intact checkpoint").And.Message.Contains("previous.safetensors").And.Message.Contains("best.safetensors"));
    }

    [Test]
    public void CheckpointsOfTheTwoFileFormatStillLoad()
    {
        using var scope = TensorScope.Begin();
        var path = Path.Combine(_dir, "last.safetensors");
        SafeTensors.Save(path, State(1), new Dictionary<string, string> { ["format"] = "pt" });
        var info = Info(4);
        info.TensorsFile = "last.safetensors";
        info.TensorsBytes = new FileInfo(path).Length;
        info.TensorsSha256 = CheckpointStore.HashFile(path);
        File.WriteAllText(Path.Combine(_dir, "last.json"), info.ToJsonText());
        Assert.That(CheckpointStore.LoadInfo(path)!.Epoch, Is.EqualTo(4));
        Assert.That(CheckpointStore.Resolve(Path.Combine(_dir, "last.json"), false), Is.EqualTo(path), "a .json path names its tensors");
        var bytes = File.ReadAllBytes(path);
        bytes[^2] ^= 1;
        File.WriteAllBytes(path, bytes);
        Assert.That(() => CheckpointStore.LoadInfo(path), Throws.TypeOf<CheckpointException>().With.Message.Contains("sha256"));
        // A new save of that name replaces both halves by one file.
        new CheckpointStore(_dir).Save("last", State(2), Info(5));
        Assert.That(Files(), Is.EqualTo(new[] { "last.safetensors", "previous.safetensors" }));
        Assert.That(CheckpointStore.LoadInfo(path)!.Epoch, Is.EqualTo(5));
    }

    [Test]
    public void BestIsACopyOfLastAndResolutionPrefersWhatWasAskedFor()
    {
        using var scope = TensorScope.Begin();
        var store = new CheckpointStore(_dir);
        Assert.That(() => CheckpointStore.Resolve(_dir, true), Throws.TypeOf<CheckpointException>().With.Message.Contains("no checkpoint"));
        store.Save("last", State(1), Info(1));
        Assert.That(CheckpointStore.Resolve(_dir, preferBest: true), Does.EndWith("last.safetensors"), "falls back to last");
        store.Copy("last", "best");
        store.Save("last", State(2), Info(2));
        Assert.That(CheckpointStore.Resolve(_dir, preferBest: true), Does.EndWith("best.safetensors"));
        Assert.That(CheckpointStore.LoadInfo(store.TensorsPath("best"))!.Epoch, Is.EqualTo(1));
        Assert.That(CheckpointStore.LoadInfo(store.TensorsPath("last"))!.Epoch, Is.EqualTo(2));
        Assert.That(() => CheckpointStore.Resolve(Path.Combine(_dir, "nope.safetensors"), false), Throws.TypeOf<CheckpointException>());
        var stray = store.TensorsPath("last") + AtomicFile.TempMarker + "999-deadbeef";
        File.WriteAllBytes(stray, new byte[123]);
        Assert.That(() => CheckpointStore.Resolve(stray, false), Throws.TypeOf<CheckpointException>().With.Message.Contains("temporary"));
    }

    [Test]
    public void OnlyTempFilesOfWritersThatAreGoneAreRemoved()
    {
        // Item 7: RemoveStaleTemps deleted every temp of a target, including another process's live one.
        var target = Path.Combine(_dir, "config.json");
        using var live = Process.Start(new ProcessStartInfo("sleep", "60") { UseShellExecute = false })!;
        using var gone = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        gone.WaitForExit();
        var liveTemp = target + AtomicFile.TempMarker + live.Id + "-aaaaaaaa";
        var deadTemp = target + AtomicFile.TempMarker + gone.Id + "-bbbbbbbb";
        var oddTemp = target + AtomicFile.TempMarker + "not-ours";
        foreach (var t in new[] { liveTemp, deadTemp, oddTemp }) File.WriteAllText(t, "half");
        try
        {
            AtomicFile.WriteAllText(target, "{}");
            Assert.That(File.Exists(liveTemp), Is.True, "a running process's temp file is left alone");
            Assert.That(File.Exists(deadTemp), Is.False, "a dead writer's temp file is removed");
            Assert.That(File.Exists(oddTemp), Is.True, "a name not in our form is not provably ours");
            Assert.That(File.ReadAllText(target), Is.EqualTo("{}"));
        }
        finally
        {
            live.Kill();
        }
    }

    [Test]
    public void AFailingFsyncIsAnErrorNamingTheFile()
    {
        // .NET's Flush(true) was seen to ignore fsync errors; ours checks the return of fsync itself.
        using var bogus = new SafeFileHandle(987654, ownsHandle: false);
        var e = Assert.Throws<IOException>(() => Durability.Fsync(bogus, "/runs/x/last.safetensors.tmp-1-2"));
        Assert.That(e!.Message, Does.Contain("fsync of '/runs/x/last.safetensors.tmp-1-2' failed").And.Contain("errno 9"));
        Assert.That(() => Durability.FsyncDirectory(Path.Combine(_dir, "missing")), Throws.InstanceOf<IOException>());
        Assert.DoesNotThrow(() => Durability.FsyncDirectory(_dir));
        using (var f = new FileStream(Path.Combine(_dir, "ok"), FileMode.Create))
        {
            f.WriteByte(1);
            Assert.DoesNotThrow(() => Durability.FlushToDisk(f));
        }
    }
}
