// Batches from a dataset, decoded by a pool of worker threads ahead of the consumer.
//
// Determinism: the sample order of an epoch is a pure function of (Seed, epoch), and the random
// generator of the sample at position p is seeded from (Seed, epoch, p, attempt) (a batch
// augmentation's from (Seed, epoch, batch index)), so batches are identical whatever the number
// of workers or their timing. Workers take batches in order; the consumer receives them in order.
// With a sampler (Options.Sampler, e.g. a process's share of a distributed epoch) the order is the
// sampler's and p is the sample's global position.
//
// Memory: a semaphore of Prefetch slots; a worker takes a slot before it claims the next batch,
// and the slot is freed when the consumer disposes that batch or asks for the next one. So at
// most Prefetch batches exist at once (being built, ready, or in the consumer's hands),
// whatever the dataset size.
//
// Unreadable files (SampleLoadException: missing, empty, truncated, not an image) are skipped:
// position p is filled by the next dataset index (index + 1, + 2, ... wrapping), so batch sizes
// stay constant and the choice is deterministic. Each bad file is logged once and counted; more
// than MaxConsecutiveFailures in a row is an InvalidDataException. Any exception in a worker is
// rethrown on the consumer's thread when it reaches that batch.
//
// Tensors: workers fill CPU tensors; for another device the consumer's thread uploads them
// (device work stays on the thread that owns the device context). Batch tensors belong to no
// TensorScope; Batch.Dispose frees them.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace ResidualEngine.Data;

public sealed class DataLoader : IDisposable
{
    private readonly IDataset _dataset;
    private readonly Device _device;
    private readonly ConcurrentDictionary<int, SampleLoadException> _badIndex = new();
    private readonly HashSet<EpochRun> _runs = new();
    private bool _disposed;

    public DataLoader(IDataset dataset, DataLoaderOptions options)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(options);
        if (options.BatchSize <= 0) throw new ArgumentException($"DataLoader: batch size must be positive, got {options.BatchSize}", nameof(options));
        if (options.Workers < 0) throw new ArgumentException($"DataLoader: workers must be >= 0, got {options.Workers}", nameof(options));
        if (options.Prefetch <= 0) throw new ArgumentException($"DataLoader: prefetch must be >= 1, got {options.Prefetch}", nameof(options));
        if (options.MaxConsecutiveFailures < 0) throw new ArgumentException($"DataLoader: MaxConsecutiveFailures must be >= 0, got {options.MaxConsecutiveFailures}", nameof(options));
        if (dataset.Count <= 0) throw new ArgumentException("DataLoader: the dataset is empty", nameof(dataset));
        if (options.Sampler is { } sampler && sampler.DatasetCount != dataset.Count)
            throw new ArgumentException($"DataLoader: the sampler was made for {sampler.DatasetCount} samples, the dataset has {dataset.Count}", nameof(options));
        SamplesPerEpoch = options.Sampler?.Count ?? dataset.Count;
        if (SamplesPerEpoch <= 0) throw new ArgumentException("DataLoader: the sampler gives this process no samples", nameof(options));
        if (options.DropLast && SamplesPerEpoch < options.BatchSize)
            throw new ArgumentException($"DataLoader: {SamplesPerEpoch} samples make no full batch of {options.BatchSize} (DropLast is set)", nameof(options));
        _dataset = dataset;
        Options = options;
        _device = options.Device ?? Device.Cpu;
        BatchesPerEpoch = options.DropLast
            ? SamplesPerEpoch / options.BatchSize
            : (SamplesPerEpoch + options.BatchSize - 1) / options.BatchSize;
    }

    public DataLoaderOptions Options { get; }
    public IDataset Dataset => _dataset;
    public int BatchesPerEpoch { get; }
    /// <summary>Samples an epoch visits: the dataset's, or the sampler's share.</summary>
    public int SamplesPerEpoch { get; }
    public DataLoaderStats Stats { get; } = new();

    /// <summary>The batches of one epoch, in order. Dispose each batch when done with it.</summary>
    public IEnumerable<Batch> Epoch(int epoch) => Epoch(epoch, 0);

    /// <summary>The batches of one epoch from batch <paramref name="firstBatch"/> on (the earlier ones are not built):
    /// the same batches the whole epoch would give from there, since order and augmentation depend on positions only.</summary>
    public IEnumerable<Batch> Epoch(int epoch, int firstBatch)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (epoch < 0) throw new ArgumentOutOfRangeException(nameof(epoch), epoch, "epoch must be >= 0");
        if (firstBatch < 0 || firstBatch > BatchesPerEpoch) throw new ArgumentOutOfRangeException(nameof(firstBatch), firstBatch, $"first batch must be in 0..{BatchesPerEpoch}");
        return Iterate(epoch, firstBatch);
    }

    private IEnumerable<Batch> Iterate(int epoch, int first)
    {
        using var run = new EpochRun(this, epoch, first);
        lock (_runs) _runs.Add(run);
        try
        {
            Batch? previous = null;
            for (int b = first; b < BatchesPerEpoch; b++)
            {
                // Asking for the next batch frees the previous one's slot, disposed or not.
                previous?.Release();
                previous = run.Take(b);
                yield return previous;
            }
            previous?.Release();
        }
        finally
        {
            lock (_runs) _runs.Remove(run);
        }
    }

    /// <summary>Dataset indices in the order epoch <paramref name="epoch"/> visits them.</summary>
    public int[] SampleOrder(int epoch) => Options.Sampler?.Indices(epoch) ?? Permutation(_dataset.Count, Options.Shuffle, Options.Seed, epoch);

    /// <summary>The order of an epoch over <paramref name="count"/> samples: 0..count-1, shuffled by (seed, epoch) when asked.</summary>
    public static int[] Permutation(int count, bool shuffle, int seed, int epoch)
    {
        var order = new int[count];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        if (!shuffle) return order;
        var rng = new Random(SampleSeed(seed, epoch, -1, 0));
        for (int i = order.Length - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    /// <summary>The seed of the random generator of the sample at <paramref name="position"/> in an epoch.</summary>
    public static int SampleSeed(int seed, int epoch, int position, int attempt)
    {
        ulong h = Mix((ulong)(uint)seed);
        h = Mix(h ^ (ulong)(uint)epoch);
        h = Mix(h ^ (ulong)(uint)position);
        h = Mix(h ^ (ulong)(uint)attempt);
        return (int)(h >> 33);
    }

    // SplitMix64's finaliser: a cheap, well-mixing bijection.
    private static ulong Mix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        EpochRun[] runs;
        lock (_runs) runs = _runs.ToArray();
        foreach (var r in runs) r.Dispose();
    }

    /// <summary>Fills one sample slot, replacing unreadable files by the next index; returns the index used.</summary>
    private int LoadSample(int epoch, int position, int first, Func<int, Random, int> fetch, out int label)
    {
        int count = _dataset.Count, limit = Options.MaxConsecutiveFailures;
        SampleLoadException? last = null;
        for (int attempt = 0; ; attempt++)
        {
            if (attempt > limit || attempt >= count)
                throw new InvalidDataException(
                    $"too many unreadable images in a row ({attempt}), last: {last!.Path}: {last.Reason}", last);
            int index = (first + attempt) % count;
            if (_badIndex.TryGetValue(index, out var known))
            {
                Stats.AddSkip();
                last = known;
                continue;
            }
            try
            {
                int global = Options.Sampler?.GlobalPosition(position) ?? position;
                label = fetch(index, new Random(SampleSeed(Options.Seed, epoch, global, attempt)));
            }
            catch (SampleLoadException e)
            {
                _badIndex.TryAdd(index, e);
                Stats.AddSkip();
                if (Stats.AddBad(e.Path, e.Reason))
                {
                    var message = $"data: skipping unreadable image {e.Path}: {e.Reason}";
                    if (Options.Log is { } log) log(message);
                    else Console.Error.WriteLine(message);
                }
                last = e;
                continue;
            }
            if ((uint)label >= (uint)_dataset.NumClasses)
                throw new InvalidOperationException($"dataset gave label {label} for sample {index}, outside 0..{_dataset.NumClasses - 1}");
            Stats.AddSample();
            return index;
        }
    }

    /// <summary>Builds batch <paramref name="b"/> of an epoch as CPU tensors.</summary>
    private HostBatch Build(int epoch, int[] order, int b, CancellationToken token)
    {
        var sw = Stopwatch.StartNew();
        int start = b * Options.BatchSize, n = Math.Min(Options.BatchSize, SamplesPerEpoch - start);
        var indices = new int[n];
        var labels = new long[n];
        Tensor? images = null, labelT = null;
        try
        {
            if (_dataset is IDirectDataset direct)
            {
                int s = direct.SampleSize, per = 3 * s * s;
                images = TensorScope.Detach(Tensor.Empty(new Shape(n, 3, s, s), DType.F32, Device.Cpu));
                var img = images;
                for (int i = 0; i < n; i++)
                {
                    token.ThrowIfCancellationRequested();
                    int off = i * per;
                    indices[i] = LoadSample(epoch, start + i, order[start + i],
                        (index, rng) => direct.GetInto(index, rng, img.Span<float>().Slice(off, per)), out int label);
                    labels[i] = label;
                }
            }
            else
            {
                var samples = new Sample[n];
                for (int i = 0; i < n; i++)
                {
                    token.ThrowIfCancellationRequested();
                    int k = i;
                    indices[i] = LoadSample(epoch, start + i, order[start + i], (index, rng) =>
                    {
                        var smp = _dataset.Get(index, rng);
                        samples[k] = smp;
                        return smp.Label;
                    }, out int label);
                    labels[i] = label;
                }
                images = TensorScope.Detach(Stack(samples, indices));
            }
            MixResult? mix = null;
            if (Options.BatchAugmentation is { } aug)
            {
                var shape = images.Shape;
                mix = aug.Apply(images.Span<float>(), n, shape[1], shape[2], shape[3], labels, new Random(SampleSeed(Options.Seed, epoch, BatchStream, b)));
            }
            labelT = TensorScope.Detach(Tensor.FromArray(labels, new Shape(n)));
            if (Options.Format != images.Format)
            {
                // Channels-last batches are laid out here, on the worker, once per batch (not per op).
                var converted = TensorScope.Detach(images.To(Options.Format));
                images.Dispose();
                images = converted;
            }
            Stats.AddWork(sw.Elapsed);
            return new HostBatch(images, labelT, indices, mix);
        }
        catch
        {
            images?.Dispose();
            labelT?.Dispose();
            throw;
        }
    }

    private static Tensor Stack(Sample[] samples, int[] indices)
    {
        var first = samples[0];
        int h = first.Height, w = first.Width, per = 3 * h * w;
        for (int i = 0; i < samples.Length; i++)
        {
            var s = samples[i];
            if (s.Image is null || s.Height != h || s.Width != w || s.Image.Length != per)
                throw new InvalidOperationException(
                    $"dataset sample {indices[i]} has {s.Image?.Length ?? 0} values for {s.Height}x{s.Width}; " +
                    $"every sample of a batch must be 3 x {h} x {w} ({per} values)");
        }
        var t = Tensor.Empty(new Shape(samples.Length, 3, h, w), DType.F32, Device.Cpu);
        var span = t.Span<float>();
        for (int i = 0; i < samples.Length; i++) samples[i].Image.AsSpan().CopyTo(span.Slice(i * per, per));
        return t;
    }

    // The "position" of the batch-level generators (the shuffle uses -1, samples 0..count-1); the batch index is the "attempt".
    private const int BatchStream = -2;

    private sealed record HostBatch(Tensor Images, Tensor Labels, int[] Indices, MixResult? Mix)
    {
        public void Dispose()
        {
            Images.Dispose();
            Labels.Dispose();
        }
    }

    /// <summary>The worker threads and the window of batches of one epoch.</summary>
    private sealed class EpochRun : IDisposable
    {
        private readonly DataLoader _l;
        private readonly int _epoch, _batches;
        private readonly int[] _order;
        private readonly object _gate = new();
        private readonly HostBatch?[] _ready;
        private readonly ExceptionDispatchInfo?[] _errors;
        private readonly int[] _held;
        private readonly SemaphoreSlim _slots;
        private readonly CancellationTokenSource _cts = new();
        private readonly Thread[] _threads;
        private int _next;
        private int _disposing;
        private bool _disposed;

        public EpochRun(DataLoader loader, int epoch, int first)
        {
            _l = loader;
            _epoch = epoch;
            _next = first;
            _batches = loader.BatchesPerEpoch;
            _order = loader.SampleOrder(epoch);
            _ready = new HostBatch?[_batches];
            _errors = new ExceptionDispatchInfo?[_batches];
            _held = new int[_batches];
            _slots = new SemaphoreSlim(loader.Options.Prefetch);
            _threads = new Thread[loader.Options.Workers];
            for (int i = 0; i < _threads.Length; i++)
            {
                _threads[i] = new Thread(Work) { IsBackground = true, Name = $"data-worker-{i}" };
                _threads[i].Start();
            }
        }

        private bool Inline => _threads.Length == 0;

        private void Work()
        {
            var token = _cts.Token;
            while (true)
            {
                try { _slots.Wait(token); }
                catch (OperationCanceledException) { return; }
                int b = Interlocked.Increment(ref _next) - 1;
                if (b >= _batches)
                {
                    _slots.Release();
                    return;
                }
                Volatile.Write(ref _held[b], 1);
                _l.Stats.EnterFlight();
                HostBatch? hb = null;
                ExceptionDispatchInfo? error = null;
                try
                {
                    hb = _l.Build(_epoch, _order, b, token);
                }
                catch (OperationCanceledException) when (token.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception e)
                {
                    error = ExceptionDispatchInfo.Capture(e);
                }
                lock (_gate)
                {
                    _ready[b] = hb;
                    _errors[b] = error;
                    Monitor.PulseAll(_gate);
                }
                if (error is not null) return;
            }
        }

        /// <summary>Waits for batch <paramref name="b"/> (or builds it, without workers) and hands it over.</summary>
        public Batch Take(int b)
        {
            var sw = Stopwatch.StartNew();
            HostBatch hb;
            if (Inline)
            {
                _held[b] = 1;
                _l.Stats.EnterFlight();
                try { hb = _l.Build(_epoch, _order, b, _cts.Token); }
                catch { Release(b); throw; }
            }
            else
            {
                lock (_gate)
                {
                    while (_ready[b] is null && _errors[b] is null)
                    {
                        if (!Monitor.Wait(_gate, 1000) && _threads.All(t => !t.IsAlive) && _ready[b] is null && _errors[b] is null)
                            throw new InvalidOperationException($"data loader workers stopped before batch {b} of epoch {_epoch} was built");
                    }
                    _errors[b]?.Throw();
                    hb = _ready[b]!;
                    _ready[b] = null;
                }
            }
            var wait = sw.Elapsed;
            _l.Stats.AddBatch(wait);
            try
            {
                Tensor images = hb.Images, labels = hb.Labels;
                if (_l._device != Device.Cpu)
                {
                    images = TensorScope.Detach(hb.Images.To(_l._device));
                    try { labels = TensorScope.Detach(hb.Labels.To(_l._device)); }
                    catch { images.Dispose(); throw; }
                    hb.Dispose();
                }
                BatchMix? mix = null;
                if (hb.Mix is { } m)
                {
                    try { mix = new BatchMix(m.Kind, m.Lambda, TensorScope.Detach(Tensor.FromArray(m.PartnerLabels, new Shape(m.PartnerLabels.Length), _l._device))); }
                    catch { images.Dispose(); labels.Dispose(); throw; }
                }
                return new Batch(b, images, labels, hb.Indices, wait, () => Release(b), mix);
            }
            catch
            {
                hb.Dispose();
                Release(b);
                throw;
            }
        }

        /// <summary>Frees batch b's slot (once).</summary>
        public void Release(int b)
        {
            if (Interlocked.Exchange(ref _held[b], 0) == 0) return;
            _l.Stats.LeaveFlight();
            if (Inline || Volatile.Read(ref _disposed)) return;
            try { _slots.Release(); }
            catch (ObjectDisposedException) { } // the epoch ended meanwhile on another thread

        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposing, 1) != 0) return;
            _cts.Cancel();
            foreach (var t in _threads) t.Join();
            Volatile.Write(ref _disposed, true);
            lock (_gate)
            {
                for (int b = 0; b < _batches; b++)
                {
                    _ready[b]?.Dispose();
                    _ready[b] = null;
                }
            }
            // Batches still in the consumer's hands keep their tensors; the window is gone.
            for (int b = 0; b < _batches; b++) Release(b);
            _slots.Dispose();
            _cts.Dispose();
        }
    }
}
