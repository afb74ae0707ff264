// Host <-> device copies through page-locked (pinned) staging buffers, asynchronous on the
// backend's stream. Two buffers alternate, each with an event: an upload copies the host data into
// a buffer, queues the DMA and returns; the buffer is reused only after its event says the DMA is
// done. A download waits for its DMA (reading is the caller's choice of synchronising). Large
// copies go in chunks so the buffers stay small.
using ResidualEngine.Native;

namespace ResidualEngine.Backends.Cuda;

internal sealed unsafe class CudaStaging : IDisposable
{
    private const long MaxChunk = 32L << 20, MinBuffer = 1L << 20;

    private readonly object _lock = new();
    private readonly nint _stream;
    private readonly Slot[] _slots = [new(), new()];
    private int _next;

    private sealed class Slot
    {
        public PinnedHostBuffer? Buffer;
        public CudaEventHandle? Event;
        public bool Pending;
    }

    public CudaStaging(nint stream) => _stream = stream;

    public void Upload(nint dst, ReadOnlySpan<byte> src)
    {
        lock (_lock)
        {
            for (long off = 0; off < src.Length;)
            {
                long n = Math.Min(MaxChunk, src.Length - off);
                var slot = Take(n);
                src.Slice((int)off, (int)n).CopyTo(new Span<byte>((void*)slot.Buffer!.Pointer, (int)n));
                CudaDriver.ThrowIfFailed(CudaDriver.cuMemcpyHtoDAsync_v2((ulong)(dst + (nint)off), (void*)slot.Buffer.Pointer, (nuint)n, _stream));
                CudaDriver.ThrowIfFailed(CudaDriver.cuEventRecord(slot.Event!.DangerousGetHandle(), _stream));
                slot.Pending = true;
                off += n;
            }
        }
    }

    public void Download(Span<byte> dst, nint src)
    {
        lock (_lock)
        {
            for (long off = 0; off < dst.Length;)
            {
                long n = Math.Min(MaxChunk, dst.Length - off);
                var slot = Take(n);
                CudaDriver.ThrowIfFailed(CudaDriver.cuMemcpyDtoHAsync_v2((void*)slot.Buffer!.Pointer, (ulong)(src + (nint)off), (nuint)n, _stream));
                CudaDriver.ThrowIfFailed(CudaDriver.cuEventRecord(slot.Event!.DangerousGetHandle(), _stream));
                CudaDriver.ThrowIfFailed(CudaDriver.cuEventSynchronize(slot.Event.DangerousGetHandle()));
                slot.Pending = false;
                new ReadOnlySpan<byte>((void*)slot.Buffer.Pointer, (int)n).CopyTo(dst.Slice((int)off, (int)n));
                off += n;
            }
        }
    }

    /// <summary>The next buffer, idle and at least <paramref name="bytes"/> long.</summary>
    private Slot Take(long bytes)
    {
        var slot = _slots[_next];
        _next ^= 1;
        slot.Event ??= CudaEventHandle.Create();
        if (slot.Pending)
        {
            CudaDriver.ThrowIfFailed(CudaDriver.cuEventSynchronize(slot.Event.DangerousGetHandle()));
            slot.Pending = false;
        }
        if (slot.Buffer is null || slot.Buffer.Bytes < bytes)
        {
            slot.Buffer?.Dispose();
            long size = MinBuffer;
            while (size < bytes) size *= 2;
            slot.Buffer = PinnedHostBuffer.Allocate(size);
        }
        return slot;
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var s in _slots)
            {
                if (s.Pending && s.Event is not null) CudaDriver.cuEventSynchronize(s.Event.DangerousGetHandle());
                s.Buffer?.Dispose();
                s.Event?.Dispose();
                s.Buffer = null;
                s.Event = null;
                s.Pending = false;
            }
        }
    }
}
