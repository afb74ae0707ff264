// Data-parallel gradient averaging (PyTorch's DistributedDataParallel), as a training-step hook.
//
// The trainable parameters are grouped into buckets in reverse order of registration (the order
// their gradients become final in a backward pass): the first bucket holds up to 1 MiB, the others
// up to 25 MiB (torch's defaults), one dtype and device per bucket. A gradient-ready hook on each
// parameter (Tensor.RegisterGradReadyHook) counts down its bucket; when a bucket is complete and
// every bucket before it has been started, its gradients are copied into one flat buffer and an
// averaging all-reduce of it is started on the process group's communication thread (MPI) or
// stream (NCCL), while the backward pass goes on. Buckets start strictly in order, so every rank
// issues the same collectives in the same order.
//
// The one synchronisation point per step is BeforeOptimizerStep (this hook runs first): buckets
// not started yet (a parameter got no gradient) start with zeros in its place, a one-value
// all-reduce carries the "stop" vote of every rank, then each bucket is waited for and copied back
// into the gradients, which are now the mean over ranks. Each bucket also carries, per parameter,
// whether this rank produced a gradient; a parameter that no rank used keeps no gradient (as in a
// single process), one used by some ranks gets the average with zeros for the others (torch's
// find_unused_parameters). Only such a parameter makes the host read the device.
//
// A parameter whose gradient arrives twice in one step (two backward passes per step) is an
// error: accumulate gradients over micro-batches in a single process, or reduce after the last one.
using System.Diagnostics;
using ResidualEngine.Distributed;
using ResidualEngine.Nn;

namespace ResidualEngine.Training.Distributed;

/// <summary>Communication of the last step: seconds all-reduces ran, and seconds the step waited for them at its synchronisation point.</summary>
public readonly record struct CommunicationStats(int Buckets, long Bytes, double CommunicationSeconds, double ExposedSeconds)
{
    /// <summary>The part of the communication that ran while the backward pass was still computing.</summary>
    public double HiddenSeconds => double.IsNaN(CommunicationSeconds) ? double.NaN : Math.Max(0, CommunicationSeconds - ExposedSeconds);
}

public sealed class DistributedDataParallel : ITrainingHook, IDisposable
{
    public const long DefaultBucketBytes = 25L << 20;
    public const long DefaultFirstBucketBytes = 1L << 20;

    private readonly ProcessGroup _group;
    private readonly Bucket[] _buckets;
    private readonly Dictionary<Tensor, (Bucket Bucket, int Slot)> _where = new(ReferenceEqualityComparer.Instance);
    private readonly List<IDisposable> _hooks = new();
    private readonly double[] _control = new double[1];
    private CollectiveWork? _controlWork;
    private int _nextLaunch;
    private bool _inStep;

    /// <param name="model">Its trainable parameters (RequiresGrad) at this moment are averaged; frozen ones are left alone.</param>
    /// <param name="group">The ranks to average over.</param>
    public DistributedDataParallel(Module model, ProcessGroup group, long bucketBytes = DefaultBucketBytes, long firstBucketBytes = DefaultFirstBucketBytes)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(group);
        if (bucketBytes < 1 || firstBucketBytes < 1) throw new ArgumentException("bucket sizes must be positive");
        _group = group;
        var trainable = model.NamedParameters().Where(p => p.Tensor.RequiresGrad).Reverse().ToList();
        var buckets = new List<Bucket>();
        var current = new List<(string, Tensor)>();
        long bytes = 0;
        foreach (var (name, p) in trainable)
        {
            long cap = buckets.Count == 0 ? firstBucketBytes : bucketBytes;
            bool other = current.Count > 0 && (current[0].Item2.DType != p.DType || current[0].Item2.Device != p.Device);
            if (current.Count > 0 && (other || bytes + p.Bytes > cap))
            {
                buckets.Add(new Bucket(buckets.Count, current));
                current = new();
                bytes = 0;
            }
            current.Add((name, p));
            bytes += p.Bytes;
        }
        if (current.Count > 0) buckets.Add(new Bucket(buckets.Count, current));
        _buckets = buckets.ToArray();
        foreach (var b in _buckets)
            for (int i = 0; i < b.Params.Length; i++)
            {
                _where[b.Params[i].Tensor] = (b, i);
                _hooks.Add(b.Params[i].Tensor.RegisterGradReadyHook(OnGradReady));
            }
    }

    public ProcessGroup Group => _group;
    /// <summary>The buckets, in the order they are reduced: each bucket's parameter names.</summary>
    public IReadOnlyList<IReadOnlyList<string>> Buckets => _buckets.Select(b => (IReadOnlyList<string>)b.Params.Select(p => p.Name).ToList()).ToList();
    /// <summary>This rank's vote, sent with the next step's synchronisation (set before the step).</summary>
    public bool StopRequested { get; set; }
    /// <summary>True once any rank voted to stop in the step just finished: every rank sees the same value after the same step.</summary>
    public bool AgreedStop { get; private set; }
    /// <summary>What the last step's communication cost.</summary>
    public CommunicationStats LastStep { get; private set; }

    /// <summary>Copies every parameter and buffer of <paramref name="model"/> from rank 0 to the others (at start and after loading a checkpoint).</summary>
    public static void BroadcastFromRoot(Module model, ProcessGroup group, bool buffersOnly = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(group);
        if (group.Size == 1) return;
        if (!buffersOnly) foreach (var (_, p) in model.NamedParameters()) group.Broadcast(p, 0);
        foreach (var (_, b) in model.NamedBuffers()) group.Broadcast(b, 0);
    }

    public void BeforeForward(StepContext step) => BeginStep();

    /// <summary>Starts a step: gradients that become ready from now on are reduced (TrainingStep calls it through BeforeForward).</summary>
    public void BeginStep()
    {
        if (_inStep) throw new InvalidOperationException("DistributedDataParallel: a step began before the previous one was synchronised");
        foreach (var b in _buckets) b.Reset();
        _nextLaunch = 0;
        AgreedStop = false;
        _inStep = true;
    }

    public void BeforeOptimizerStep(StepContext step) => Synchronize();

    /// <summary>The step's synchronisation point: every gradient is the mean over ranks when this returns.</summary>
    public void Synchronize()
    {
        if (!_inStep) throw new InvalidOperationException("DistributedDataParallel: Synchronize without BeginStep");
        _inStep = false;
        var clock = Stopwatch.StartNew();
        while (_nextLaunch < _buckets.Length) Launch(_buckets[_nextLaunch++]);
        _control[0] = StopRequested ? 1 : 0;
        _controlWork = _group.AllReduceAsync(_control, ReduceOp.Max);
        double comm = 0;
        long bytes = 0;
        foreach (var b in _buckets)
        {
            b.Work!.Wait();
            comm += b.Work.CommunicationSeconds;
            bytes += b.Flat!.Bytes;
            b.CopyBack();
            b.Work.Dispose();
            b.Work = null;
        }
        _controlWork.Wait();
        _controlWork.Dispose();
        AgreedStop = _control[0] > 0;
        LastStep = new CommunicationStats(_buckets.Length, bytes, comm, clock.Elapsed.TotalSeconds);
    }

    private void OnGradReady(Tensor p)
    {
        if (!_inStep) return; // a backward outside a data-parallel step (a user's own check): not ours to reduce
        var (b, slot) = _where[p];
        if (b.Launched)
            throw new InvalidOperationException($"DistributedDataParallel: parameter '{b.Params[slot].Name}' received a gradient after its bucket was sent " +
                "(two backward passes in one step?); accumulate in one process or reduce after the last backward");
        if (b.Ready[slot]) return; // the same pass reported it again: nothing new
        b.Ready[slot] = true;
        if (--b.Pending == 0)
            while (_nextLaunch < _buckets.Length && _buckets[_nextLaunch].Pending == 0) Launch(_buckets[_nextLaunch++]);
    }

    private void Launch(Bucket b)
    {
        b.Pack();
        b.Work = _group.AllReduceAsync(b.Flat!, ReduceOp.Average);
        b.Launched = true;
    }

    public void Dispose()
    {
        foreach (var h in _hooks) h.Dispose();
        _hooks.Clear();
        foreach (var b in _buckets) b.Dispose();
    }

    /// <summary>Parameters reduced together: their gradients, then one "used" flag per parameter, in one flat buffer.</summary>
    private sealed class Bucket : IDisposable
    {
        public Bucket(int index, List<(string, Tensor)> ps)
        {
            Index = index;
            Params = ps.Select(p => (Name: p.Item1, Tensor: p.Item2)).ToArray();
            Offsets = new long[Params.Length];
            long off = 0;
            for (int i = 0; i < Params.Length; i++) { Offsets[i] = off; off += Params[i].Tensor.Numel; }
            FlagOffset = off;
            Ready = new bool[Params.Length];
            var first = Params[0].Tensor;
            Flat = TensorScope.Detach(Tensor.Zeros(new Shape(checked((int)(off + Params.Length))), first.DType, first.Device));
            Flags = TensorScope.Detach(Tensor.Zeros(new Shape(Params.Length), first.DType, first.Device));
        }

        public int Index { get; }
        public (string Name, Tensor Tensor)[] Params { get; }
        public long[] Offsets { get; }
        public long FlagOffset { get; }
        public bool[] Ready { get; }
        public int Pending { get; set; }
        public bool Launched { get; set; }
        public Tensor? Flat { get; private set; }
        private Tensor? Flags { get; set; }
        public CollectiveWork? Work { get; set; }
        private bool[] _hadGrad = [];

        public void Reset()
        {
            Array.Clear(Ready);
            Pending = Params.Length;
            Launched = false;
        }

        /// <summary>Gradients (zeros where none) and the used flags into the flat buffer.</summary>
        public void Pack()
        {
            _hadGrad = new bool[Params.Length];
            var flags = new double[Params.Length];
            for (int i = 0; i < Params.Length; i++)
            {
                var g = Params[i].Tensor.Grad;
                _hadGrad[i] = g is not null;
                flags[i] = g is null ? 0 : 1;
                FlatBuffer.CopyIn(Flat!, Offsets[i], g, Params[i].Tensor.Numel);
            }
            using var f = Tensor.FromDoubles(flags, new Shape(flags.Length), Flat!.DType, Flat.Device);
            FlatBuffer.CopyIn(Flat, FlagOffset, f, flags.Length);
        }

        /// <summary>The averaged gradients back into the parameters' Grad (created where this rank had none but another rank did).</summary>
        public void CopyBack()
        {
            double[]? used = null;
            for (int i = 0; i < Params.Length; i++)
            {
                var p = Params[i].Tensor;
                if (!_hadGrad[i])
                {
                    if (used is null)
                    {
                        FlatBuffer.CopyOut(Flat!, FlagOffset, Flags!);
                        used = Flags!.ToDoubles();
                    }
                    if (used[i] == 0) continue; // no rank used it: no gradient, as in one process
                    p.Grad = TensorScope.Detach(Tensor.Zeros(p.Shape, p.DType, p.Device));
                }
                FlatBuffer.CopyOut(Flat!, Offsets[i], p.Grad!);
            }
        }

        public void Dispose()
        {
            Work?.Wait();
            Flat?.Dispose();
            Flags?.Dispose();
            Flat = null;
            Flags = null;
        }
    }
}
