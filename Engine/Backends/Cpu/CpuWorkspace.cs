// Working memory of the CPU kernels, in two kinds:
//  - CpuScratch: per-task buffers whose size does not depend on the batch (packed slivers, tile
//    buffers, column blocks), pooled per worker and grown on demand;
//  - CpuWorkspace: per-call buffers that grow with the batch (phase planes of the input, the
//    spread output gradient, packed weights). The calling thread rents them for one backend call
//    from the host caching allocator (HostAllocator), which keeps them for the next step.
using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace ResidualEngine.Backends.Cpu;

internal sealed unsafe class CpuWorkspace : IDisposable
{
    private readonly List<(nint Ptr, long Size)> _held = new(4);

    public static CpuWorkspace Begin() => new();

    /// <summary>At least <paramref name="count"/> elements of T, 64-byte aligned, valid until Dispose (contents undefined).</summary>
    public T* Get<T>(long count) where T : unmanaged
    {
        var buf = HostAllocator.Rent(Math.Max(64, count * sizeof(T)));
        if (CpuScratch.PoisonNew) new Span<byte>((void*)buf.Ptr, checked((int)buf.Size)).Fill(0xFF);
        _held.Add(buf);
        return (T*)buf.Ptr;
    }

    public void Dispose()
    {
        foreach (var (p, size) in _held) HostAllocator.Return(p, size);
        _held.Clear();
    }

    /// <summary>Tests: fill every cached buffer with NaN bit patterns.</summary>
    internal static void PoisonCached() => HostAllocator.PoisonCached();
}

/// <summary>Per-thread scratch memory (64-byte aligned, grown on demand, pooled across calls).</summary>
internal sealed unsafe class CpuScratch
{
    private static readonly ConcurrentBag<CpuScratch> s_pool = new();
    private readonly void*[] _ptr = new void*[4];
    private readonly long[] _bytes = new long[4];

    public const int SlotA = 0, SlotB = 1, SlotC = 2, SlotD = 3;

    public static CpuScratch Rent() => s_pool.TryTake(out var s) ? s : new CpuScratch();
    public static void Return(CpuScratch s) => s_pool.Add(s);

    /// <summary>Tests: fill new and pooled buffers with NaN bit patterns, so that any read of
    /// memory a kernel did not write first shows up in its results.</summary>
    internal static bool PoisonNew { get; set; }

    internal static void PoisonPooled()
    {
        CpuWorkspace.PoisonCached();
        foreach (var s in s_pool)
            for (int i = 0; i < s._ptr.Length; i++)
                if (s._ptr[i] is not null) new Span<byte>(s._ptr[i], checked((int)s._bytes[i])).Fill(0xFF);
    }

    /// <summary>At least <paramref name="count"/> elements of T in slot <paramref name="slot"/> (contents undefined).</summary>
    public T* Get<T>(int slot, long count) where T : unmanaged
    {
        long bytes = Math.Max(64, count * sizeof(T));
        if (_bytes[slot] < bytes)
        {
            NativeMemory.AlignedFree(_ptr[slot]);
            _ptr[slot] = null;
            _bytes[slot] = 0;
            _ptr[slot] = NativeMemory.AlignedAlloc((nuint)bytes, 64);
            if (_ptr[slot] is null) throw new OutOfMemoryException($"cannot allocate {bytes} bytes of CPU scratch memory");
            _bytes[slot] = bytes;
            if (PoisonNew) new Span<byte>(_ptr[slot], checked((int)bytes)).Fill(0xFF);
        }
        return (T*)_ptr[slot];
    }

    ~CpuScratch()
    {
        for (int i = 0; i < _ptr.Length; i++) NativeMemory.AlignedFree(_ptr[i]);
    }
}
