// Data-parallel collectives on GPUs: CUDA tensors go through NCCL, everything else (host
// buffers, CPU tensors, the stop flag, metrics) through the host group it was built on (MPI, or
// a single process). Set-up: rank 0 makes the 128-byte ncclUniqueId, the host group broadcasts
// it, every rank calls ncclCommInitRank on its own device (the local rank's GPU).
//
// Overlap: an asynchronous all-reduce runs on a communication stream of its own. The compute
// stream records an event when the tensor is ready, the communication stream waits for it and
// runs ncclAllReduce, then records a second event; Wait makes the compute stream wait for that
// event. The host never blocks, and kernels queued on the compute stream meanwhile (the rest of
// the backward pass) run alongside the reduction. Average is NCCL's ncclAvg (NCCL >= 2.10).
// Broadcasts run on the compute stream itself (set-up only).
using ResidualEngine.Backends;
using ResidualEngine.Backends.Cuda;
using ResidualEngine.Native;

namespace ResidualEngine.Distributed;

public sealed unsafe class NcclProcessGroup : ProcessGroup
{
    private readonly ProcessGroup _host;
    private readonly CudaBackend _backend;
    private readonly CudaStreamHandle _commStream;
    private readonly string _version;
    private nint _comm;

    /// <summary>
    /// An NCCL communicator over the ranks of <paramref name="host"/>, this rank on
    /// <paramref name="device"/>. Every rank must call this at the same point. Throws
    /// NativeLibraryNotFoundException (listing every path tried) when libnccl.so.2 is missing.
    /// </summary>
    public NcclProcessGroup(ProcessGroup host, Device device)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (!device.IsCuda) throw new ArgumentException($"NCCL works on CUDA devices, not {device}", nameof(device));
        _host = host;
        LibraryResolver.Require(CudaLibrary.Nccl);
        var (major, minor, patch) = Nccl.Version();
        if (major < 2 || (major == 2 && minor < 10))
            throw new NcclException($"NCCL {major}.{minor}.{patch} is too old: averaging all-reduces need NCCL 2.10 or newer");
        _version = $"NCCL {major}.{minor}.{patch}";
        _backend = (CudaBackend)BackendRegistry.Get(device);
        _backend.Enter();
        var id = new ncclUniqueId();
        if (host.Rank == 0) Nccl.ThrowIfFailed(Nccl.ncclGetUniqueId(out id));
        host.Broadcast(new Span<byte>(id.Internal, ncclUniqueId.Bytes), 0);
        Nccl.ThrowIfFailed(Nccl.ncclCommInitRank(out _comm, host.Size, id, host.Rank));
        _commStream = CudaStreamHandle.Create();
        Device = device;
    }

    /// <summary>The GPU this rank's collectives run on.</summary>
    public Device Device { get; }

    public override int Rank => _host.Rank;
    public override int Size => _host.Size;
    public override int LocalRank => _host.LocalRank;
    public override int LocalSize => _host.LocalSize;
    public override string Description => $"{_version} + {_host.Description}";

    public override void AllReduce(Span<double> values, ReduceOp op) => _host.AllReduce(values, op);
    public override void AllReduce(Span<long> values, ReduceOp op) => _host.AllReduce(values, op);
    public override void Broadcast(Span<byte> data, int root) => _host.Broadcast(data, root);
    public override byte[] AllGather(ReadOnlySpan<byte> mine) => _host.AllGather(mine);
    public override void Barrier() => _host.Barrier();
    public override CollectiveWork AllReduceAsync(double[] values, ReduceOp op) => _host.AllReduceAsync(values, op);

    public override CollectiveWork AllReduceAsync(Tensor tensor, ReduceOp op)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.Device.Type == DeviceType.Cpu) return _host.AllReduceAsync(tensor, op);
        Check(tensor);
        _backend.Enter();
        var ready = CudaEventHandle.Create();
        var done = CudaEventHandle.Create();
        nint comm = _commStream.DangerousGetHandle();
        CudaDriver.ThrowIfFailed(CudaDriver.cuEventRecord(ready.DangerousGetHandle(), _backend.Stream));
        CudaDriver.ThrowIfFailed(CudaDriver.cuStreamWaitEvent(comm, ready.DangerousGetHandle(), 0));
        var p = (void*)tensor.Pointer;
        Nccl.ThrowIfFailed(Nccl.ncclAllReduce(p, p, (nuint)tensor.Numel, Nccl.TypeOf(tensor.DType), RedOp(op), _comm, comm));
        CudaDriver.ThrowIfFailed(CudaDriver.cuEventRecord(done.DangerousGetHandle(), comm));
        ready.Dispose();
        return new StreamWork(_backend, done);
    }

    public override void Broadcast(Tensor tensor, int root)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.Device.Type == DeviceType.Cpu) { _host.Broadcast(tensor, root); return; }
        Check(tensor);
        _backend.Enter();
        var p = (void*)tensor.Pointer;
        Nccl.ThrowIfFailed(Nccl.ncclBroadcast(p, p, (nuint)tensor.Numel, Nccl.TypeOf(tensor.DType), root, _comm, _backend.Stream));
    }

    public override void Abort(int exitCode)
    {
        var c = Interlocked.Exchange(ref _comm, 0);
        if (c != 0) Nccl.ncclCommAbort(c);
        _host.Abort(exitCode);
    }

    /// <summary>Destroys the communicator (after the queued work ran); the host group stays with its owner.</summary>
    public override void Dispose()
    {
        var c = Interlocked.Exchange(ref _comm, 0);
        if (c == 0) return;
        _backend.Enter();
        CudaDriver.ThrowIfFailed(CudaDriver.cuStreamSynchronize(_commStream.DangerousGetHandle()));
        Nccl.ThrowIfFailed(Nccl.ncclCommDestroy(c));
        _commStream.Dispose();
    }

    private void Check(Tensor t)
    {
        ObjectDisposedException.ThrowIf(_comm == 0, this);
        if (t.Device != Device) throw new ArgumentException($"NCCL group of {Device} got {t.Describe()}");
    }

    private static ncclRedOp_t RedOp(ReduceOp op) => op switch
    {
        ReduceOp.Sum => ncclRedOp_t.ncclSum,
        ReduceOp.Average => ncclRedOp_t.ncclAvg,
        ReduceOp.Max => ncclRedOp_t.ncclMax,
        ReduceOp.Min => ncclRedOp_t.ncclMin,
        _ => throw new ArgumentOutOfRangeException(nameof(op)),
    };

    /// <summary>An all-reduce on the communication stream; Wait orders the compute stream after it.</summary>
    private sealed class StreamWork(CudaBackend backend, CudaEventHandle done) : CollectiveWork
    {
        private int _waited;

        public override void Wait()
        {
            if (Interlocked.Exchange(ref _waited, 1) != 0) return;
            backend.Enter();
            CudaDriver.ThrowIfFailed(CudaDriver.cuStreamWaitEvent(backend.Stream, done.DangerousGetHandle(), 0));
        }

        public override void Dispose()
        {
            Wait();
            done.Dispose();
        }
    }
}
