// The CPU kernels' fork-join pool: every task runs exactly once whatever the thread count, the
// first exception reaches the caller (and the pool still works afterwards), a region started from
// inside a region runs serially, and regions started by several threads at once all complete.
using NUnit.Framework;
using ResidualEngine.Backends.Cpu;

namespace ResidualEngine.Tests.Backends;

public class CpuWorkersTests
{
    [TestCase(1, 1)]
    [TestCase(1, 4)]
    [TestCase(7, 2)]
    [TestCase(1000, 2)]
    [TestCase(1000, 3)]
    [TestCase(33, 8)]
    public void EveryTaskRunsExactlyOnce(int count, int threads)
    {
        for (int round = 0; round < 50; round++)
        {
            var hits = new int[count];
            CpuWorkers.Run(count, threads, (i, s) =>
            {
                Assert.That(s, Is.Not.Null);
                Interlocked.Increment(ref hits[i]);
            });
            Assert.That(hits, Is.All.EqualTo(1), $"round {round}");
        }
    }

    [Test]
    public void ExceptionReachesTheCallerAndThePoolKeepsWorking()
    {
        var e = Assert.Throws<InvalidOperationException>(() => CpuWorkers.Run(64, 2, (i, _) =>
        {
            if (i == 17) throw new InvalidOperationException("task 17 failed");
        }));
        Assert.That(e!.Message, Is.EqualTo("task 17 failed"));
        long sum = 0;
        CpuWorkers.Run(100, 2, (i, _) => Interlocked.Add(ref sum, i));
        Assert.That(sum, Is.EqualTo(4950));
    }

    [Test]
    public void NestedRegionRunsSeriallyAndCompletes()
    {
        var hits = new int[8 * 16];
        CpuWorkers.Run(8, 2, (i, _) =>
            CpuWorkers.Run(16, 2, (j, _) => Interlocked.Increment(ref hits[i * 16 + j])));
        Assert.That(hits, Is.All.EqualTo(1));
    }

    [Test]
    public void ConcurrentCallersAllComplete()
    {
        const int callers = 4, regions = 200, count = 10;
        var totals = new long[callers];
        var threads = Enumerable.Range(0, callers).Select(c => new Thread(() =>
        {
            for (int r = 0; r < regions; r++)
                CpuWorkers.Run(count, 2, (i, _) => Interlocked.Add(ref totals[c], i + 1));
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) Assert.That(t.Join(TimeSpan.FromMinutes(2)), Is.True, "a caller did not finish");
        Assert.That(totals, Is.All.EqualTo((long)regions * count * (count + 1) / 2));
    }

    [Test]
    public void WorkersThatSleptWakeForTheNextRegion()
    {
        int saved = CpuWorkers.SpinMicroseconds;
        try
        {
            CpuWorkers.SpinMicroseconds = 0; // sleep at once, so every region has to wake them
            for (int r = 0; r < 200; r++)
            {
                int done = 0;
                CpuWorkers.Run(4, 2, (i, _) => Interlocked.Increment(ref done));
                Assert.That(done, Is.EqualTo(4));
                if (r % 50 == 0) Thread.Sleep(5);
            }
        }
        finally { CpuWorkers.SpinMicroseconds = saved; }
    }
}
