// Per-call working memory whose size grows with the batch (phase planes of the input, the spread
// output gradient, packed weights). The calling thread rents buffers for the duration of one
// backend call; on return they go to a small process-wide cache, because training repeats the
// same shapes every step and fresh pages would be faulted in again each time. The cache is
// bounded (MaxCachedBytes); per-task scratch whose size does not depend on the batch lives in
// CpuScratch instead.
using System.Runtime.InteropServices;

namespace ResidualEngine.Backends.Cpu;

internal sealed unsafe class CpuWorkspace : IDisposable
{
    private static readonly object s_lock = new();
    private static readonly List<(nint Ptr, long Bytes)> s_free = new();
    private static long s_cachedBytes;

    /// <summary>Bytes of returned buffers kept for reuse; beyond this the largest are freed.</summary>
    public static long MaxCachedBytes { get; set; } = 256L << 20;

    private readonly List<(nint Ptr, long Bytes)> _held = new(4);

    public static CpuWorkspace Begin() => new();

    /// <summary>At least <paramref name="count"/> elements of T, 64-byte aligned, valid until Dispose (contents undefined).</summary>
    public T* Get<T>(long count) where T : unmanaged
    {
        long bytes = Math.Max(64, count * sizeof(T));
        (nint Ptr, long Bytes) buf = default;
        lock (s_lock)
        {
            int best = -1;
            for (int i = 0; i < s_free.Count; i++)
                if (s_free[i].Bytes >= bytes && (best < 0 || s_free[i].Bytes < s_free[best].Bytes)) best = i;
            if (best >= 0)
            {
                buf = s_free[best];
                s_free.RemoveAt(best);
                s_cachedBytes -= buf.Bytes;
            }
        }
        if (buf.Ptr == 0)
        {
            void* p = NativeMemory.AlignedAlloc((nuint)bytes, 64);
            if (p is null) throw new OutOfMemoryException($"cannot allocate {bytes} bytes of CPU workspace memory");
            buf = ((nint)p, bytes);
            if (CpuScratch.PoisonNew) new Span<byte>(p, checked((int)bytes)).Fill(0xFF);
        }
        _held.Add(buf);
        return (T*)buf.Ptr;
    }

    public void Dispose()
    {
        lock (s_lock)
        {
            foreach (var b in _held)
            {
                s_free.Add(b);
                s_cachedBytes += b.Bytes;
            }
            _held.Clear();
            while (s_cachedBytes > MaxCachedBytes && s_free.Count > 0)
            {
                int largest = 0;
                for (int i = 1; i < s_free.Count; i++) if (s_free[i].Bytes > s_free[largest].Bytes) largest = i;
                NativeMemory.AlignedFree((void*)s_free[largest].Ptr);
                s_cachedBytes -= s_free[largest].Bytes;
                s_free.RemoveAt(largest);
            }
        }
    }

    /// <summary>Tests: fill every cached buffer with NaN bit patterns.</summary>
    internal static void PoisonCached()
    {
        lock (s_lock)
            foreach (var (p, bytes) in s_free) new Span<byte>((void*)p, checked((int)bytes)).Fill(0xFF);
    }
}
