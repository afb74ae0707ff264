// MPI_COMM_WORLD as a ProcessGroup. Every MPI call of the process runs on one communication
// thread, in the order the calls were issued: that thread initialises MPI (asking for
// MPI_THREAD_MULTIPLE; FUNNELED is all it needs, since it alone calls MPI), runs the queued
// collectives, and finalises MPI when the group is disposed. Blocking calls wait for their turn
// in the queue, so a host all-reduce issued after a gradient bucket never overtakes it (the
// order is what makes the ranks' collectives match). Asynchronous all-reduces of CPU tensors run
// on that thread while the caller goes on: this is how gradient communication overlaps the
// backward pass on the CPU. Average is MPI_SUM followed by a division by the world size on the
// same thread. CUDA tensors without NCCL are staged through host memory (downloaded when the
// collective is issued, uploaded when it is waited for): correct, not overlapped. MPI_Abort is
// called from the failing thread when MPI granted MPI_THREAD_MULTIPLE; otherwise the process
// exits with the code and mpirun ends the others (it terminates a job when a rank exits non-zero).
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using ResidualEngine.Native;

namespace ResidualEngine.Distributed;

public sealed unsafe class MpiProcessGroup : ProcessGroup
{
    private static readonly object s_lock = new();
    private static MpiProcessGroup? s_world;

    private readonly BlockingCollection<Item> _queue = new();
    private readonly Thread _thread;
    private readonly LaunchInfo? _launch;
    private MpiAbi _abi = null!;
    private int _rank, _size, _threadLevel;
    private string _version = "";
    private bool _disposed;

    private MpiProcessGroup(LaunchInfo? launch)
    {
        _launch = launch;
        var ready = new Item(() =>
        {
            int initialized;
            Mpi.ThrowIfFailed(Mpi.MPI_Initialized(out initialized));
            if (initialized == 0) Mpi.ThrowIfFailed(Mpi.MPI_Init_thread(null, null, Mpi.MPI_THREAD_MULTIPLE, out _threadLevel));
            else Mpi.ThrowIfFailed(Mpi.MPI_Query_thread(out _threadLevel));
            if (_threadLevel < Mpi.MPI_THREAD_FUNNELED)
                throw new MpiException($"MPI granted thread level {_threadLevel}; this code needs at least MPI_THREAD_FUNNELED (1): one thread makes every MPI call");
            _abi = MpiAbi.Current;
            Mpi.ThrowIfFailed(Mpi.MPI_Comm_rank(_abi.CommWorld, out _rank));
            Mpi.ThrowIfFailed(Mpi.MPI_Comm_size(_abi.CommWorld, out _size));
            try { _version = Mpi.LibraryVersion(); }
            catch (MpiException) { _version = _abi.Implementation.ToString(); }
        });
        _queue.Add(ready);
        _thread = new Thread(Run) { IsBackground = true, Name = "mpi-communication" };
        _thread.Start();
        ready.Wait();
        if (_launch is { } l && (l.WorldSize != _size || l.Rank != _rank))
            throw new MpiException($"MPI says rank {_rank} of {_size}, but the {l.Launcher} launcher said rank {l.Rank} of {l.WorldSize}: is the MPI library the launcher's?");
    }

    /// <summary>
    /// MPI_COMM_WORLD of this process, initialising MPI on first use. Throws MpiNotFoundException
    /// when no MPI library is installed.
    /// </summary>
    public static MpiProcessGroup World()
    {
        lock (s_lock)
        {
            if (s_world is { _disposed: false } w) return w;
            if (s_world is not null) throw new InvalidOperationException("MPI was finalised in this process and cannot be initialised again");
            MpiLibrary.Require();
            return s_world = new MpiProcessGroup(LaunchEnvironment.Detect());
        }
    }

    public override int Rank => _rank;
    public override int Size => _size;
    public override int LocalRank => _launch?.LocalRank ?? 0;
    public override int LocalSize => _launch?.LocalSize ?? 1;
    public override string Description => _version;
    /// <summary>The thread level MPI granted (3 = MPI_THREAD_MULTIPLE).</summary>
    public int ThreadLevel => _threadLevel;
    public MpiImplementation Implementation => _abi.Implementation;

    // ---- host buffers ----

    public override void AllReduce(Span<double> values, ReduceOp op)
    {
        fixed (double* p = values) Run(ReduceItem((nint)p, values.Length, _abi.Double, op, DType.F64));
    }

    public override void AllReduce(Span<long> values, ReduceOp op)
    {
        if (op == ReduceOp.Average) throw new ArgumentException("Average of integers: use Sum and divide", nameof(op));
        fixed (long* p = values) Run(ReduceItem((nint)p, values.Length, _abi.Int64, op, DType.I64));
    }

    public override void Broadcast(Span<byte> data, int root)
    {
        CheckRoot(root);
        fixed (byte* p = data)
        {
            nint ptr = (nint)p;
            int n = data.Length;
            Run(new Item(() => Chunked(ptr, n, 1, (q, c) => Mpi.ThrowIfFailed(Mpi.MPI_Bcast((void*)q, c, _abi.Byte, root, _abi.CommWorld), "MPI_Bcast"))));
        }
    }

    public override byte[] AllGather(ReadOnlySpan<byte> mine)
    {
        var all = new byte[checked(mine.Length * _size)];
        fixed (byte* s = mine)
        fixed (byte* d = all)
        {
            nint sp = (nint)s, dp = (nint)d;
            int n = mine.Length;
            Run(new Item(() => Mpi.ThrowIfFailed(Mpi.MPI_Allgather((void*)sp, n, _abi.Byte, (void*)dp, n, _abi.Byte, _abi.CommWorld), "MPI_Allgather")));
        }
        return all;
    }

    public override void Barrier() => Run(new Item(() => Mpi.ThrowIfFailed(Mpi.MPI_Barrier(_abi.CommWorld), "MPI_Barrier")));

    public override CollectiveWork AllReduceAsync(double[] values, ReduceOp op)
    {
        ArgumentNullException.ThrowIfNull(values);
        var pin = GCHandle.Alloc(values, GCHandleType.Pinned);
        var item = ReduceItem(pin.AddrOfPinnedObject(), values.Length, _abi.Double, op, DType.F64);
        item.Finally = () => pin.Free();
        Enqueue(item);
        return item;
    }

    // ---- tensors ----

    public override CollectiveWork AllReduceAsync(Tensor tensor, ReduceOp op)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        var type = TypeOf(tensor.DType);
        if (tensor.Device.Type == DeviceType.Cpu)
        {
            var item = ReduceItem(tensor.Pointer, tensor.Numel, type, op, tensor.DType);
            Enqueue(item);
            return item;
        }
        // A device tensor without NCCL: through the host (download now, upload on Wait).
        var host = new byte[tensor.Bytes];
        tensor.Backend.CopyToHost(tensor, host);
        var pin = GCHandle.Alloc(host, GCHandleType.Pinned);
        var staged = ReduceItem(pin.AddrOfPinnedObject(), tensor.Numel, type, op, tensor.DType);
        staged.Finally = () => pin.Free();
        staged.AfterWait = () => tensor.Backend.CopyFromHost(tensor, host);
        Enqueue(staged);
        return staged;
    }

    public override void Broadcast(Tensor tensor, int root)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        CheckRoot(root);
        if (tensor.Device.Type == DeviceType.Cpu)
        {
            Broadcast(tensor.HostSpan(), root);
            return;
        }
        var host = new byte[tensor.Bytes];
        if (_rank == root) tensor.Backend.CopyToHost(tensor, host);
        Broadcast(host, root);
        if (_rank != root) tensor.Backend.CopyFromHost(tensor, host);
    }

    public override void Abort(int exitCode)
    {
        Console.Out.Flush();
        if (_threadLevel >= Mpi.MPI_THREAD_MULTIPLE && !_disposed)
        {
            // Our own line, so the user (and the tests) can tell an ended job from a crashed rank
            // whatever mpirun prints about it (Open MPI's help text can itself fail to render).
            Console.Error.WriteLine($"rank {_rank} of {_size}: ending every rank of the job (MPI_Abort, exit code {exitCode})");
            Console.Error.Flush();
            Mpi.MPI_Abort(_abi.CommWorld, exitCode);
        }
        Console.Error.Flush();
        Environment.Exit(exitCode);
    }

    /// <summary>Finalises MPI (after every queued collective has run). MPI cannot be initialised again in this process.</summary>
    public override void Dispose()
    {
        lock (s_lock)
        {
            if (_disposed) return;
            _disposed = true;
        }
        var fin = new Item(() =>
        {
            Mpi.ThrowIfFailed(Mpi.MPI_Finalized(out int done));
            if (done == 0) Mpi.ThrowIfFailed(Mpi.MPI_Finalize());
        });
        _queue.Add(fin);
        _queue.CompleteAdding();
        fin.Wait();
        _thread.Join();
    }

    // ---- the communication thread ----

    private void Run()
    {
        foreach (var item in _queue.GetConsumingEnumerable()) item.Execute();
    }

    private void Enqueue(Item item)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _queue.Add(item);
    }

    private void Run(Item item)
    {
        Enqueue(item);
        item.Wait();
    }

    private Item ReduceItem(nint data, long n, nint type, ReduceOp op, DType dtype)
    {
        var mpiOp = op switch { ReduceOp.Sum or ReduceOp.Average => _abi.Sum, ReduceOp.Max => _abi.Max, ReduceOp.Min => _abi.Min, _ => throw new ArgumentOutOfRangeException(nameof(op)) };
        int size = dtype.Size();
        return new Item(() =>
        {
            Chunked(data, n, size, (p, c) => Mpi.ThrowIfFailed(Mpi.MPI_Allreduce((void*)_abi.InPlace, (void*)p, c, type, mpiOp, _abi.CommWorld), "MPI_Allreduce"));
            if (op == ReduceOp.Average && _size > 1) Divide(data, n, dtype, _size);
        });
    }

    private static void Chunked(nint data, long count, int elementSize, Action<nint, int> call)
    {
        const int Max = 1 << 30; // MPI counts are ints
        if (count == 0) call(data, 0);
        for (long off = 0; off < count; off += Max) call(data + (nint)(off * elementSize), (int)Math.Min(Max, count - off));
    }

    private static void Divide(nint data, long n, DType dtype, int by)
    {
        for (long off = 0; off < n; off += int.MaxValue / 8)
        {
            int len = (int)Math.Min(int.MaxValue / 8, n - off);
            if (dtype == DType.F32)
            {
                var s = new Span<float>((float*)data + off, len);
                System.Numerics.Tensors.TensorPrimitives.Divide(s, by, s);
            }
            else if (dtype == DType.F64)
            {
                var s = new Span<double>((double*)data + off, len);
                System.Numerics.Tensors.TensorPrimitives.Divide(s, by, s);
            }
            else throw new NotSupportedException($"Average of {dtype}");
        }
    }

    private nint TypeOf(DType dtype) => dtype switch
    {
        DType.F32 => _abi.Float,
        DType.F64 => _abi.Double,
        DType.I64 => _abi.Int64,
        DType.I32 => _abi.Int32,
        DType.U8 => _abi.Byte,
        _ => throw new NotSupportedException($"MPI collectives of {dtype} tensors are not supported (use F32 or F64 gradients, or NCCL on GPUs)"),
    };

    private void CheckRoot(int root)
    {
        if (root < 0 || root >= _size) throw new ArgumentOutOfRangeException(nameof(root), root, $"root must be a rank in 0..{_size - 1}");
    }

    /// <summary>One queued MPI call: runs on the communication thread; Wait rethrows its failure.</summary>
    private sealed class Item(Action action) : CollectiveWork
    {
        private readonly ManualResetEventSlim _done = new();
        private ExceptionDispatchInfo? _error;
        private double _seconds = double.NaN;
        private int _waited;

        public Action? Finally { get; set; }
        public Action? AfterWait { get; set; }

        public void Execute()
        {
            long start = Stopwatch.GetTimestamp();
            try { action(); }
            catch (Exception e) { _error = ExceptionDispatchInfo.Capture(e); }
            finally
            {
                _seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                try { Finally?.Invoke(); }
                finally { _done.Set(); }
            }
        }

        public override double CommunicationSeconds => _done.IsSet ? _seconds : double.NaN;

        public override void Wait()
        {
            _done.Wait();
            _error?.Throw();
            if (Interlocked.Exchange(ref _waited, 1) == 0) AfterWait?.Invoke();
        }
    }
}
