// The caching allocator's logic on a fake device memory (no GPU): size classes, reuse, statistics,
// out-of-memory handling (sync, release the cache, retry once, then a typed error stating every
// figure), and the finalizer path of CudaStorage (queue + leak count, no CUDA call).
using System.Runtime.CompilerServices;
using NUnit.Framework;
using ResidualEngine.Backends.Cuda;

namespace ResidualEngine.Tests.Backends.Cuda;

public class CudaAllocatorTests
{
    /// <summary>A device of fixed capacity; records calls so tests can check their order.</summary>
    private sealed class FakeMemory(long capacity) : IDeviceMemory
    {
        private readonly Dictionary<nint, long> _blocks = new();
        private nint _next = 0x10000;
        public List<string> Log { get; } = new();
        public long Used { get; private set; }
        public int Allocs { get; private set; }

        public bool TryAllocate(long bytes, out nint ptr)
        {
            Log.Add($"alloc {bytes}");
            if (Used + bytes > capacity) { ptr = 0; return false; }
            ptr = _next;
            _next += (nint)bytes;
            _blocks[ptr] = bytes;
            Used += bytes;
            Allocs++;
            return true;
        }

        public void Free(nint ptr)
        {
            Log.Add("free");
            Used -= _blocks[ptr];
            _blocks.Remove(ptr);
        }

        public (long Free, long Total) MemoryInfo() => (capacity - Used, capacity);
        public void Synchronize() => Log.Add("sync");
    }

    [TestCase(0, 512)]
    [TestCase(1, 512)]
    [TestCase(512, 512)]
    [TestCase(513, 1024)]
    [TestCase(1 << 20, 1 << 20)]
    [TestCase((1 << 20) + 1, 5 << 18)]          // 1.25 MiB
    [TestCase(3 << 20, 3 << 20)]
    [TestCase((3 << 20) + 1, 7 << 19)]          // 3.5 MiB
    public void SizeClasses(long request, long expected) => Assert.That(CudaAllocator.RoundSize(request), Is.EqualTo(expected));

    [Test]
    public void SizeClassesNeverShrinkAndWasteAtMostAQuarter()
    {
        var rng = new Random(7);
        long prev = 0;
        for (long b = 1; b < (1L << 34); b = b * 3 / 2 + rng.Next(1, 1000))
        {
            long r = CudaAllocator.RoundSize(b);
            Assert.That(r, Is.GreaterThanOrEqualTo(b));
            Assert.That(r % 512, Is.Zero);
            Assert.That(r, Is.GreaterThanOrEqualTo(prev));
            if (b > 4096) Assert.That((double)(r - b) / b, Is.LessThanOrEqualTo(0.25), $"request {b} -> {r}");
            prev = r;
        }
    }

    [Test]
    public void FreedBlocksAreReusedWithoutCallingTheDriver()
    {
        var mem = new FakeMemory(1 << 30);
        var a = new CudaAllocator(mem, Device.Cuda(0));
        var p1 = a.Allocate(1000);
        a.Free(p1);
        var p2 = a.Allocate(900); // same 1024-byte class
        Assert.That(p2, Is.EqualTo(p1));
        Assert.That(mem.Allocs, Is.EqualTo(1));
        var s = a.Stats;
        Assert.That(s.DeviceAllocations, Is.EqualTo(1));
        Assert.That(s.ReusedAllocations, Is.EqualTo(1));
        Assert.That(s.AllocatedBytes, Is.EqualTo(1024));
        var p3 = a.Allocate(5000); // another class: a new block
        Assert.That(p3, Is.Not.EqualTo(p1));
        Assert.That(mem.Allocs, Is.EqualTo(2));
    }

    [Test]
    public void StatisticsTrackAllocatedCachedAndPeak()
    {
        var a = new CudaAllocator(new FakeMemory(1 << 30), Device.Cuda(0));
        var x = a.Allocate(4096);
        var y = a.Allocate(8192);
        a.Free(x);
        var s = a.Stats;
        Assert.That(s.AllocatedBytes, Is.EqualTo(8192));
        Assert.That(s.CachedBytes, Is.EqualTo(4096));
        Assert.That(s.PeakAllocatedBytes, Is.EqualTo(4096 + 8192));
        Assert.That(s.ReservedBytes, Is.EqualTo(4096 + 8192));
        Assert.That(s.LiveBlocks, Is.EqualTo(1));
        a.Free(y);
        a.ResetPeak();
        Assert.That(a.Stats.PeakAllocatedBytes, Is.Zero);
        a.EmptyCache();
        Assert.That(a.Stats.CachedBytes, Is.Zero);
    }

    [Test]
    public void OutOfMemoryReleasesTheCacheAfterASyncAndRetries()
    {
        var mem = new FakeMemory(4 << 20);
        var a = new CudaAllocator(mem, Device.Cuda(0));
        var big = a.Allocate(3 << 20);
        a.Free(big); // cached: the device is 3 MiB full
        mem.Log.Clear();
        var other = a.Allocate(2 << 20); // does not fit next to the cached block
        Assert.That(other, Is.Not.Zero);
        Assert.That(mem.Log, Is.EqualTo(new[] { $"alloc {2 << 20}", "sync", "free", $"alloc {2 << 20}" }));
        Assert.That(a.Stats.CachedBytes, Is.Zero);
    }

    [Test]
    public void OutOfMemoryAfterRetryThrowsTypedErrorAndAllocatorStillWorks()
    {
        var mem = new FakeMemory(8 << 20);
        var a = new CudaAllocator(mem, Device.Cuda(1));
        var live = a.Allocate(5 << 20);
        var cached = a.Allocate(1 << 20);
        a.Free(cached);
        var e = Assert.Throws<CudaOutOfMemoryException>(() => a.Allocate(6L << 20));
        Assert.That(e!.RequestedBytes, Is.EqualTo(6L << 20));
        Assert.That(e.AllocatedBytes, Is.EqualTo(5L << 20));
        Assert.That(e.CachedBytes, Is.EqualTo(1L << 20), "the cache that was released is reported");
        Assert.That(e.TotalBytes, Is.EqualTo(8L << 20));
        Assert.That(e.FreeBytes, Is.EqualTo(3L << 20));
        Assert.That(e.Message, Does.Contain("cuda:1").And.Contain((6L << 20).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        // Nothing leaked into the books, and small allocations still succeed.
        Assert.That(a.Stats.AllocatedBytes, Is.EqualTo(5L << 20));
        var small = a.Allocate(1000);
        a.Free(small);
        a.Free(live);
        Assert.That(a.Stats.AllocatedBytes, Is.Zero);
    }

    [Test]
    public void DoubleFreeIsRejected()
    {
        var a = new CudaAllocator(new FakeMemory(1 << 20), Device.Cuda(0));
        var p = a.Allocate(100);
        a.Free(p);
        Assert.Throws<InvalidOperationException>(() => a.Free(p));
    }

    [Test]
    public void DeferredFreesAreDrainedByTheNextAllocation()
    {
        var mem = new FakeMemory(1 << 20);
        var a = new CudaAllocator(mem, Device.Cuda(0));
        var p = a.Allocate(2048);
        a.FreeDeferred(p);
        var q = a.Allocate(2048);
        Assert.That(q, Is.EqualTo(p));
        Assert.That(mem.Allocs, Is.EqualTo(1));
        Assert.That(a.Stats.DeferredFrees, Is.EqualTo(1));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void MakeAndDropStorage(CudaAllocator a) => CudaStorage.Create(a, 3000, Device.Cuda(0));

    [Test]
    public void LeakedStorageIsQueuedByItsFinalizerAndCounted()
    {
        var mem = new FakeMemory(1 << 20);
        var a = new CudaAllocator(mem, Device.Cuda(0));
        // Let storages that earlier tests dropped be finalized first, so only ours is counted below.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long leaks = TensorStats.LeakedStorages, live = TensorStats.LiveBytes(DeviceType.Cuda);
        MakeAndDropStorage(a);
        Assert.That(TensorStats.LiveBytes(DeviceType.Cuda), Is.EqualTo(live + 3000));
        for (int i = 0; i < 5 && TensorStats.LeakedStorages == leaks; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        Assert.That(TensorStats.LeakedStorages, Is.GreaterThanOrEqualTo(leaks + 1));
        Assert.That(TensorStats.LiveBytes(DeviceType.Cuda), Is.EqualTo(live));
        Assert.That(mem.Log.Count(l => l == "free"), Is.Zero, "the finalizer made no device call");
        Assert.That(a.Stats.CachedBytes, Is.EqualTo(CudaAllocator.RoundSize(3000)), "the block went back to the cache");
        Assert.That(a.Stats.AllocatedBytes, Is.Zero);
    }

    [Test]
    public void ReleasedStorageReturnsItsBlockAtOnce()
    {
        var a = new CudaAllocator(new FakeMemory(1 << 20), Device.Cuda(0));
        long live = TensorStats.LiveBytes(DeviceType.Cuda);
        var s = CudaStorage.Create(a, 10_000, Device.Cuda(0));
        Assert.That(a.Stats.AllocatedBytes, Is.EqualTo(CudaAllocator.RoundSize(10_000)));
        s.Release();
        Assert.That(a.Stats.AllocatedBytes, Is.Zero);
        Assert.That(TensorStats.LiveBytes(DeviceType.Cuda), Is.EqualTo(live));
    }

    [Test]
    public void FailedAllocationCountsNoBytes()
    {
        var a = new CudaAllocator(new FakeMemory(1 << 20), Device.Cuda(0));
        long live = TensorStats.LiveBytes(DeviceType.Cuda);
        Assert.Throws<CudaOutOfMemoryException>(() => CudaStorage.Create(a, 2 << 20, Device.Cuda(0)));
        Assert.That(TensorStats.LiveBytes(DeviceType.Cuda), Is.EqualTo(live));
    }
}
