// Copies between tensors and a slice of one flat buffer, on the tensors' device: what gradient
// buckets are made of (many small gradients become one collective). On the CPU these are memory
// copies; on a GPU, device-to-device copies queued on the backend's stream (so they are ordered
// with the kernels that produced the gradients and those that read them back). A tensor's
// storage is copied as it lies (a channels-last gradient stays channels-last).
using ResidualEngine.Backends.Cuda;
using ResidualEngine.Native;

namespace ResidualEngine.Distributed;

public static unsafe class FlatBuffer
{
    /// <summary>Copies <paramref name="source"/> into <paramref name="flat"/> at element <paramref name="offset"/>; a null source writes <paramref name="count"/> zeros.</summary>
    public static void CopyIn(Tensor flat, long offset, Tensor? source, long count)
    {
        ArgumentNullException.ThrowIfNull(flat);
        if (source is not null) Check(flat, offset, source.Numel, source);
        else Check(flat, offset, count, null);
        long bytes = count * flat.DType.Size();
        nint dst = flat.Pointer + (nint)(offset * flat.DType.Size());
        if (flat.Device.Type == DeviceType.Cpu)
        {
            var d = new Span<byte>((void*)dst, checked((int)bytes));
            if (source is null) d.Clear();
            else new ReadOnlySpan<byte>((void*)source.Pointer, checked((int)bytes)).CopyTo(d);
            return;
        }
        var be = (CudaBackend)flat.Backend;
        be.Enter();
        if (source is null) CudaDriver.ThrowIfFailed(CudaDriver.cuMemsetD8Async((ulong)dst, 0, (nuint)bytes, be.Stream));
        else CudaDriver.ThrowIfFailed(CudaDriver.cuMemcpyDtoDAsync_v2((ulong)dst, (ulong)source.Pointer, (nuint)bytes, be.Stream));
    }

    /// <summary>Copies the slice of <paramref name="flat"/> at element <paramref name="offset"/> into <paramref name="destination"/>.</summary>
    public static void CopyOut(Tensor flat, long offset, Tensor destination)
    {
        ArgumentNullException.ThrowIfNull(flat);
        ArgumentNullException.ThrowIfNull(destination);
        Check(flat, offset, destination.Numel, destination);
        long bytes = destination.Bytes;
        nint src = flat.Pointer + (nint)(offset * flat.DType.Size());
        if (flat.Device.Type == DeviceType.Cpu)
        {
            new ReadOnlySpan<byte>((void*)src, checked((int)bytes)).CopyTo(new Span<byte>((void*)destination.Pointer, checked((int)bytes)));
            return;
        }
        var be = (CudaBackend)flat.Backend;
        be.Enter();
        CudaDriver.ThrowIfFailed(CudaDriver.cuMemcpyDtoDAsync_v2((ulong)destination.Pointer, (ulong)src, (nuint)bytes, be.Stream));
    }

    private static void Check(Tensor flat, long offset, long count, Tensor? other)
    {
        if (flat.Rank != 1) throw new ArgumentException($"FlatBuffer: the buffer must be 1-d, got {flat.Describe()}");
        if (offset < 0 || count < 0 || offset + count > flat.Numel)
            throw new ArgumentOutOfRangeException(nameof(offset), $"FlatBuffer: elements {offset}..{offset + count} do not fit a buffer of {flat.Numel}");
        if (other is not null && (other.DType != flat.DType || other.Device != flat.Device))
            throw new ArgumentException($"FlatBuffer: {other.Describe()} does not match the buffer's {flat.DType} on {flat.Device}");
    }
}
