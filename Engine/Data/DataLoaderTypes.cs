// The DataLoader's options, its batches and its counters.
using System.Collections.Concurrent;

namespace ResidualEngine.Data;

/// <summary>
/// How a <see cref="DataLoader"/> batches. Workers = 0 decodes on the consumer's thread.
/// Prefetch bounds the batches alive at once (being decoded, ready, or held by the consumer).
/// </summary>
public sealed record DataLoaderOptions(int BatchSize, bool Shuffle, int Seed, int Workers = 2, int Prefetch = 4, bool DropLast = false, Device? Device = null)
{
    /// <summary>Where unreadable files are reported (once per file); Console.Error when null.</summary>
    public Action<string>? Log { get; init; }

    /// <summary>Unreadable files tolerated in a row while looking for a replacement; one more is an error.</summary>
    public int MaxConsecutiveFailures { get; init; } = 50;

    /// <summary>Which samples an epoch visits, in what order (e.g. this process's share: DistributedSampler); null: the whole dataset, shuffled when Shuffle is set.</summary>
    public ISampler? Sampler { get; init; }

    /// <summary>Applied to every whole batch on the host (mixup, cutmix), with a generator seeded from (Seed, epoch, batch index).</summary>
    public IBatchAugmentation? BatchAugmentation { get; init; }

    /// <summary>Memory format of the image batches: NCHW, or channels-last for a model converted with
    /// Module.To(MemoryFormat.ChannelsLast). The worker that collates a batch converts it, once.</summary>
    public MemoryFormat Format { get; init; } = MemoryFormat.Contiguous;
}

/// <summary>How a batch's samples were mixed: sample i with sample i - 1, whose labels are <see cref="PartnerLabels"/> (on the batch's device).</summary>
public sealed record BatchMix(MixKind Kind, double Lambda, Tensor PartnerLabels);

/// <summary>
/// One batch: images (N, 3, S, S) F32 (in the options' memory format) and labels (N) I64 on the loader's device. The batch owns
/// its tensors (they belong to no TensorScope); dispose it when the step is done.
/// </summary>
public sealed class Batch : IDisposable
{
    private Action? _onRelease;

    internal Batch(int index, Tensor images, Tensor labels, int[] indices, TimeSpan waitTime, Action? onRelease, BatchMix? mix = null)
    {
        Mix = mix;
        Index = index;
        Images = images;
        Labels = labels;
        Indices = indices;
        Count = indices.Length;
        WaitTime = waitTime;
        _onRelease = onRelease;
    }

    /// <summary>Position of the batch in its epoch.</summary>
    public int Index { get; }
    public Tensor Images { get; }
    /// <summary>The samples' own labels (as read, before any mixing).</summary>
    public Tensor Labels { get; }
    public int Count { get; }

    /// <summary>How the images were mixed (mixup, cutmix), or null; the batch owns its partner labels.</summary>
    public BatchMix? Mix { get; }

    /// <summary>Dataset indices of the samples (after replacing unreadable ones).</summary>
    public IReadOnlyList<int> Indices { get; }

    /// <summary>Time the consumer waited for this batch to be ready.</summary>
    public TimeSpan WaitTime { get; }

    public bool IsDisposed { get; private set; }

    /// <summary>Frees this batch's slot in the loader's prefetch window (idempotent).</summary>
    internal void Release() => Interlocked.Exchange(ref _onRelease, null)?.Invoke();

    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        Images.Dispose();
        Labels.Dispose();
        Mix?.PartnerLabels.Dispose();
        Release();
    }
}

/// <summary>Counters of a loader, updated live and safe to read from any thread.</summary>
public sealed class DataLoaderStats
{
    private long _samples, _batches, _skipped, _waitTicks, _workTicks;
    private int _inFlight, _peakInFlight;
    private readonly ConcurrentDictionary<string, string> _bad = new(StringComparer.Ordinal);

    /// <summary>Samples produced (replacements included, skipped files not).</summary>
    public long Samples => Interlocked.Read(ref _samples);
    public long Batches => Interlocked.Read(ref _batches);

    /// <summary>Times an unreadable file was met and skipped (a bad file counts each time it comes up).</summary>
    public long SkippedSamples => Interlocked.Read(ref _skipped);

    /// <summary>Distinct unreadable files.</summary>
    public int BadFiles => _bad.Count;

    /// <summary>Unreadable files with their reason.</summary>
    public IReadOnlyDictionary<string, string> BadFileReasons => _bad;

    /// <summary>Total time the consumer waited for batches.</summary>
    public TimeSpan ConsumerWait => TimeSpan.FromTicks(Interlocked.Read(ref _waitTicks));

    /// <summary>Total time the workers spent building batches (summed over workers).</summary>
    public TimeSpan WorkerTime => TimeSpan.FromTicks(Interlocked.Read(ref _workTicks));

    /// <summary>Batches alive now (being built, ready, or held by the consumer).</summary>
    public int BatchesInFlight => Volatile.Read(ref _inFlight);

    /// <summary>The most batches that were ever alive at once; never above Prefetch.</summary>
    public int PeakBatchesInFlight => Volatile.Read(ref _peakInFlight);

    internal void AddSample() => Interlocked.Increment(ref _samples);
    internal void AddBatch(TimeSpan wait)
    {
        Interlocked.Increment(ref _batches);
        Interlocked.Add(ref _waitTicks, wait.Ticks);
    }
    internal void AddWork(TimeSpan t) => Interlocked.Add(ref _workTicks, t.Ticks);
    internal void AddSkip() => Interlocked.Increment(ref _skipped);

    /// <summary>Records an unreadable file; true the first time this path is seen.</summary>
    internal bool AddBad(string path, string reason) => _bad.TryAdd(path, reason);

    internal void EnterFlight()
    {
        int now = Interlocked.Increment(ref _inFlight);
        int peak;
        while (now > (peak = Volatile.Read(ref _peakInFlight)))
            if (Interlocked.CompareExchange(ref _peakInFlight, now, peak) == peak) break;
    }

    internal void LeaveFlight() => Interlocked.Decrement(ref _inFlight);

    public override string ToString() =>
        $"{Samples} samples, {Batches} batches, {BadFiles} unreadable files ({SkippedSamples} skips), " +
        $"consumer waited {ConsumerWait.TotalSeconds:F2} s, workers busy {WorkerTime.TotalSeconds:F2} s";
}
