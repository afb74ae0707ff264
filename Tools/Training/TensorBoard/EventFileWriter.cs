// TensorBoard event files in a run directory, so `tensorboard --logdir runs` shows a run's
// curves: one file per process (events.out.tfevents.<seconds>.<host>.<pid>.<sequence>.residual,
// named as TensorFlow does, so name order is time order), starting with the file-version event, then one Event per logged point
// holding simple-value scalars ("train/loss", "val/top1", ...). Each event is flushed as it is
// written, so a crash loses nothing logged. On resume, events after the checkpoint's step are
// removed from the earlier files (rewritten atomically), as metrics.jsonl is truncated, so the
// curves read as if the run had never stopped.
using Google.Protobuf;
using ResidualEngine.Training.TensorBoard.Proto;

namespace ResidualEngine.Training.TensorBoard;

public sealed class EventFileWriter : IDisposable
{
    public const string FilePrefix = "events.out.tfevents.";
    public const string FileVersion = "brain.Event:2";

    private readonly FileStream _stream;

    public EventFileWriter(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory.CreateDirectory(directory);
        var now = DateTimeOffset.UtcNow;
        var host = new string(Environment.MachineName.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_').ToArray());
        // TensorBoard reads a directory's files in name order: the sequence number keeps a file written in
        // the same second as an earlier one (a quick resume) after it.
        for (int seq = Files(directory).Count; ; seq++)
        {
            Path = System.IO.Path.Combine(directory, $"{FilePrefix}{now.ToUnixTimeSeconds()}.{host}.{Environment.ProcessId}.{seq:D4}.residual");
            if (!File.Exists(Path)) break;
        }
        _stream = new FileStream(Path, FileMode.CreateNew, FileAccess.Write, FileShare.Read);
        Write(new Event { WallTime = Seconds(now), FileVersion = FileVersion });
    }

    public string Path { get; }

    /// <summary>Writes scalars for one step (NaN and infinities are written as they are; TensorBoard shows them as gaps).</summary>
    public void Scalars(long step, IEnumerable<(string Tag, double Value)> values, DateTimeOffset? time = null)
    {
        ArgumentNullException.ThrowIfNull(values);
        var summary = new Summary();
        foreach (var (tag, v) in values) summary.Value.Add(new Summary.Types.Value { Tag = tag, SimpleValue = (float)v });
        if (summary.Value.Count == 0) return;
        Write(new Event { WallTime = Seconds(time ?? DateTimeOffset.UtcNow), Step = step, Summary = summary });
    }

    private void Write(Event e)
    {
        TfRecord.Write(_stream, e.ToByteArray());
        _stream.Flush();
    }

    private static double Seconds(DateTimeOffset t) => t.ToUnixTimeMilliseconds() / 1000.0;

    /// <summary>The event files of a run directory, oldest first.</summary>
    public static IReadOnlyList<string> Files(string directory) =>
        Directory.Exists(directory)
            ? Directory.EnumerateFiles(directory, FilePrefix + "*").Where(f => !f.Contains(AtomicFile.TempMarker, StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList()
            : [];

    /// <summary>Every event of a file, each record's CRCs checked (FormatException names a damaged record).</summary>
    internal static IEnumerable<Event> ReadEvents(string path)
    {
        using var f = ResidualEngine.IO.SafeFile.OpenRead(path, "TensorBoard event file");
        foreach (var record in TfRecord.Read(f))
        {
            Event e;
            try { e = Event.Parser.ParseFrom(record); }
            catch (InvalidProtocolBufferException x) { throw new FormatException($"{path}: a record is not an Event ({x.Message})", x); }
            yield return e;
        }
    }

    /// <summary>Drops the scalars logged after <paramref name="lastStep"/> from a run's event files (used when resuming).
    /// A file that cannot be read is left as it is: it is the user's, and TensorBoard skips what it cannot parse.</summary>
    public static void TruncateAfter(string directory, long lastStep)
    {
        foreach (var file in Files(directory))
        {
            List<Event> events;
            try { events = ReadEvents(file).ToList(); }
            catch (FormatException) { continue; }
            if (!events.Any(e => e.Summary is not null && e.Step > lastStep)) continue;
            AtomicFile.Write(file, s =>
            {
                foreach (var e in events.Where(e => e.Summary is null || e.Step <= lastStep)) TfRecord.Write(s, e.ToByteArray());
            });
        }
    }

    public void Dispose() => _stream.Dispose();
}
