// What changes when a run is one rank of a data-parallel job (Trainer.ProcessGroup set, more than
// one process): each rank trains on its DistributedSampler share of every epoch with the same
// per-rank batch (global batch = batch x ranks) and evaluates its share of the val set without
// padding; rank 0's weights and buffers are broadcast once at the start; gradients are averaged by
// DistributedDataParallel during the backward pass; metrics are summed over ranks before they are
// shown, so every rank holds the same numbers; BN running statistics are rank 0's (broadcast
// before each evaluation, as torch's DDP broadcast_buffers; with --sync-bn they agree anyway).
// Only rank 0 prints, writes run files and checkpoints. A stop request (SIGTERM, Ctrl-C) is a
// vote carried by every step's synchronisation, so all ranks stop after the same step; a
// non-finite loss is seen in the summed metrics by all ranks at the same step. Every rank waits
// for the others (a barrier) before Run returns, so nobody exits while rank 0 is still writing.
// Data on disk is prepared in turns: rank 0, then the first rank of each other machine, then
// the rest, so two processes never generate the synthetic set into the same folder at once.
using ResidualEngine.Data;
using ResidualEngine.Distributed;
using ResidualEngine.Training.Distributed;

namespace ResidualEngine.Training;

public sealed partial class Trainer
{
    /// <summary>The ranks of a data-parallel job this trainer is one of (null or one process: a plain run).</summary>
    public ProcessGroup? ProcessGroup { get; set; }

    /// <summary>True for the process that prints and writes files (rank 0, or the only one).</summary>
    public bool IsLeader => ProcessGroup?.IsLeader ?? true;

    private bool Distributed => ProcessGroup is { Size: > 1 };
    private int WorldSize => ProcessGroup?.Size ?? 1;

    /// <summary>Every rank must train with the same options (the device aside: each has its own GPU); checked once, on all ranks.</summary>
    private void RequireSameOptions()
    {
        if (!Distributed) return;
        var j = _o.ToJson();
        j.Remove("device");
        ProcessGroup!.RequireSame("the training options", j.ToJsonString());
    }

    /// <summary>Runs <paramref name="prepare"/> on rank 0 first, then on each machine's first rank, then on the rest.</summary>
    private T InTurns<T>(Func<T> prepare)
    {
        if (!Distributed) return prepare();
        var g = ProcessGroup!;
        T result = default!;
        int turn = g.Rank == 0 ? 0 : g.LocalRank == 0 ? 1 : 2;
        for (int t = 0; t < 3; t++)
        {
            if (t == turn) result = prepare();
            g.Barrier();
        }
        return result;
    }

    /// <summary>This rank's share of the samples (training: shuffled by epoch and padded; evaluation: every sample once).</summary>
    private ISampler? SamplerFor(IDataset data, bool train) =>
        Distributed ? new DistributedSampler(data.Count, ProcessGroup!.Rank, WorldSize, shuffle: train, _o.Seed, pad: train) : null;

    /// <summary>Ties the model to the other ranks: same weights, synchronised BN if asked, gradient averaging in the step.</summary>
    private DistributedDataParallel? AttachDataParallel(Models.ResNet model, TrainingStep step)
    {
        if (!Distributed) return null;
        var g = ProcessGroup!;
        if (_o.SyncBn) Nn.BatchNorm2d.SynchronizeAll(model, g);
        DistributedDataParallel.BroadcastFromRoot(model, g);
        var ddp = new DistributedDataParallel(model, g, (long)(_o.BucketMb * (1 << 20)));
        step.Hooks.Insert(0, ddp); // first: clipping and the other hooks see averaged gradients
        return ddp;
    }

    /// <summary>Validation of <paramref name="model"/> (the weights, or their moving average) over every rank's share, summed: the same numbers on every rank.</summary>
    private EvalResult EvaluateAll(RunState s, Nn.Module model, DType? autocast = null)
    {
        if (!Distributed) return Evaluator.Evaluate(model, s.ValLoader, autocast: autocast);
        if (!_o.SyncBn) DistributedDataParallel.BroadcastFromRoot(model, ProcessGroup!, buffersOnly: true);
        var r = Evaluator.Evaluate(model, s.ValLoader, autocast: autocast);
        var v = new[] { r.Loss * r.Samples, r.Top1 * r.Samples, r.Top5 * r.Samples, r.Samples, r.Seconds };
        ProcessGroup!.AllReduce(v.AsSpan(0, 4), ReduceOp.Sum);
        ProcessGroup.AllReduce(v.AsSpan(4, 1), ReduceOp.Max);
        return new EvalResult(v[0] / v[3], Math.Round(v[1]) / v[3], Math.Round(v[2]) / v[3], (long)v[3], v[4]);
    }

    /// <summary>Whether the run stops after this step: this process's request, or in a job, any rank's (agreed at the step's synchronisation).</summary>
    private bool StopAgreed(RunState s) => s.DataParallel is { } ddp ? ddp.AgreedStop : _stop.IsRequested;

    /// <summary>The step to continue from in a resumed epoch when the checkpoint's global batch differs from this run's:
    /// the samples already seen are the same, re-counted in this run's global batches (rounded down: a partial batch is seen again).</summary>
    internal static int RederiveStep(CheckpointInfo info, int batchSize, int worldSize, int stepsPerEpoch, out string? note)
    {
        ArgumentNullException.ThrowIfNull(info);
        note = null;
        int oldBatch = info.BatchSize > 0 ? info.BatchSize : batchSize;
        long oldGlobal = (long)oldBatch * Math.Max(1, info.WorldSize), newGlobal = (long)batchSize * worldSize;
        if (info.StepInEpoch == 0 || oldGlobal == newGlobal) return info.StepInEpoch;
        long seen = info.StepInEpoch * oldGlobal;
        int step = (int)Math.Min(seen / newGlobal, stepsPerEpoch);
        note = $"the checkpoint was written by {info.WorldSize} process(es) x batch {oldBatch}; this run is {worldSize} x {batchSize}: " +
            $"{seen} samples of epoch {info.Epoch} were seen, continuing at step {step}" +
            (seen % newGlobal != 0 ? $" ({seen % newGlobal} samples of the last partial batch are seen again)" : "");
        return step;
    }

    /// <summary>Sums of the per-step communication of DistributedDataParallel over an epoch, for the log.</summary>
    internal sealed class CommunicationTally
    {
        private int _steps;
        private double _comm, _exposed;
        private CommunicationStats _last;

        public void Add(CommunicationStats s)
        {
            _steps++;
            _comm += s.CommunicationSeconds;
            _exposed += s.ExposedSeconds;
            _last = s;
        }

        public void Reset() => (_steps, _comm, _exposed) = (0, 0, 0);

        /// <summary>"all-reduce of 1.1 MB in 2 buckets: 12.3 ms/step, 3.1 ms/step waited for (75% hidden behind the backward pass)".</summary>
        public string Summary()
        {
            if (_steps == 0) return "data parallel: no step this epoch";
            double comm = 1000 * _comm / _steps, exposed = 1000 * _exposed / _steps;
            double hidden = comm > 0 ? Math.Clamp(1 - exposed / comm, 0, 1) : double.NaN;
            return string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"data parallel: all-reduce of {_last.Bytes / 1e6:F1} MB in {_last.Buckets} bucket(s) took {comm:F1} ms/step; the step waited {exposed:F1} ms for it " +
                $"({100 * hidden:F0}% hidden behind the backward pass; waiting for a slower rank counts as communication)");
        }
    }
}
