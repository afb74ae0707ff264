// The processes of a data-parallel job and the collectives between them, whatever carries them:
// MPI (CPU tensors and host buffers; CUDA tensors staged through the host), NCCL (CUDA tensors,
// bootstrapped and assisted by MPI), or nothing at all for a single process. Collectives are
// issued by every rank in the same order (that is MPI's and NCCL's contract); the implementations
// keep the order they were issued in, so code that calls them in a deterministic order (the
// training step does) never mismatches. Tensor collectives work in place on contiguous tensors.
// An asynchronous collective returns a CollectiveWork; Wait makes its result visible to what the
// caller does next (on a GPU: to the work queued after it on the compute stream).
namespace ResidualEngine.Distributed;

/// <summary>How values from every rank are combined.</summary>
public enum ReduceOp
{
    Sum,
    /// <summary>The sum divided by the number of ranks.</summary>
    Average,
    Max,
    Min,
}

/// <summary>A collective in flight.</summary>
public abstract class CollectiveWork : IDisposable
{
    /// <summary>Blocks until the result can be used (on a GPU: until later work on the compute stream sees it). Rethrows a failure.</summary>
    public abstract void Wait();

    /// <summary>Seconds the collective itself ran (from its start on the communication thread or stream to its end), once known; NaN otherwise.</summary>
    public virtual double CommunicationSeconds => double.NaN;

    public virtual void Dispose() { }
}

public abstract class ProcessGroup : IDisposable
{
    /// <summary>This process's index, 0 .. Size-1.</summary>
    public abstract int Rank { get; }
    /// <summary>Number of processes (the world size).</summary>
    public abstract int Size { get; }
    /// <summary>This process's index among those on the same machine (picks the GPU).</summary>
    public virtual int LocalRank => 0;
    /// <summary>Processes on this machine.</summary>
    public virtual int LocalSize => 1;
    /// <summary>What carries the collectives ("Open MPI v4.1.4", "NCCL 2.21.5 + Open MPI v4.1.4", "single process").</summary>
    public abstract string Description { get; }
    /// <summary>Rank 0: the process that prints, plots and writes checkpoints.</summary>
    public bool IsLeader => Rank == 0;

    // ---- host buffers (blocking) ----

    public abstract void AllReduce(Span<double> values, ReduceOp op);
    public abstract void AllReduce(Span<long> values, ReduceOp op);
    /// <summary>Rank <paramref name="root"/>'s bytes into every rank's <paramref name="data"/> (same length everywhere).</summary>
    public abstract void Broadcast(Span<byte> data, int root);
    /// <summary>Every rank's block (the same length on every rank), in rank order.</summary>
    public abstract byte[] AllGather(ReadOnlySpan<byte> mine);
    public abstract void Barrier();
    /// <summary>An all-reduce of a host array that runs while the caller goes on; the array must stay untouched until Wait.</summary>
    public abstract CollectiveWork AllReduceAsync(double[] values, ReduceOp op);

    // ---- tensors (in place, contiguous, any device) ----

    /// <summary>Starts an all-reduce of <paramref name="tensor"/>; it must stay alive and unwritten until Wait.</summary>
    public abstract CollectiveWork AllReduceAsync(Tensor tensor, ReduceOp op);

    public void AllReduce(Tensor tensor, ReduceOp op)
    {
        using var w = AllReduceAsync(tensor, op);
        w.Wait();
    }

    /// <summary>Rank <paramref name="root"/>'s values into <paramref name="tensor"/> on every rank.</summary>
    public abstract void Broadcast(Tensor tensor, int root);

    /// <summary>
    /// Ends every process of the job with <paramref name="exitCode"/> (MPI_Abort). Call it after
    /// printing why: the other ranks are killed wherever they are.
    /// </summary>
    public abstract void Abort(int exitCode);

    // ---- helpers built on the above ----

    /// <summary>Rank <paramref name="root"/>'s string on every rank (others pass anything, e.g. null).</summary>
    public string? BroadcastString(string? value, int root)
    {
        Span<byte> head = stackalloc byte[8];
        byte[] body = Rank == root && value is not null ? System.Text.Encoding.UTF8.GetBytes(value) : [];
        if (Rank == root) BitConverter.TryWriteBytes(head, value is null ? -1L : body.Length);
        Broadcast(head, root);
        long n = BitConverter.ToInt64(head);
        if (n < 0) return null;
        if (Rank != root) body = new byte[n];
        Broadcast(body, root);
        return System.Text.Encoding.UTF8.GetString(body);
    }

    /// <summary>Throws on every rank with the same message when the ranks disagree on <paramref name="what"/> (a setting that must match).</summary>
    public void RequireSame(string what, string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var mine = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(value));
        var all = AllGather(mine);
        for (int r = 1; r < Size; r++)
            if (!all.AsSpan(r * 32, 32).SequenceEqual(all.AsSpan(0, 32)))
                throw new InvalidOperationException($"the ranks disagree on {what} (rank {r} differs from rank 0; rank {Rank} has {value}): every rank must run with the same options");
    }

    public abstract void Dispose();
}

/// <summary>One process: every collective is the identity (Average of one value is the value).</summary>
public sealed class SingleProcessGroup : ProcessGroup
{
    public static SingleProcessGroup Instance { get; } = new();

    public override int Rank => 0;
    public override int Size => 1;
    public override string Description => "single process";
    public override void AllReduce(Span<double> values, ReduceOp op) { }
    public override void AllReduce(Span<long> values, ReduceOp op) { }
    public override void Broadcast(Span<byte> data, int root) => CheckRoot(root);
    public override byte[] AllGather(ReadOnlySpan<byte> mine) => mine.ToArray();
    public override void Barrier() { }
    public override CollectiveWork AllReduceAsync(double[] values, ReduceOp op) => Done.Instance;
    public override CollectiveWork AllReduceAsync(Tensor tensor, ReduceOp op) => Done.Instance;
    public override void Broadcast(Tensor tensor, int root) => CheckRoot(root);
    public override void Abort(int exitCode) => Environment.Exit(exitCode);
    public override void Dispose() { }

    private static void CheckRoot(int root)
    {
        if (root != 0) throw new ArgumentOutOfRangeException(nameof(root), root, "a single process has only rank 0");
    }

    private sealed class Done : CollectiveWork
    {
        public static readonly Done Instance = new();
        public override void Wait() { }
        public override double CommunicationSeconds => 0;
    }
}
