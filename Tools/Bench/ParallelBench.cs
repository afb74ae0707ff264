// `residual bench parallel`: the cost of data-parallel training on this machine. Each rank runs
// warm-up and timed training steps of a zoo model on a fixed synthetic batch (no data loading),
// with DistributedDataParallel when there are several ranks; rank 0 prints, per rank, the median
// step time, the all-reduce time per step (as the communication thread or stream ran it,
// waiting for a slower rank included), the time the step waited for it at its end, the share of
// the all-reduce hidden behind the backward pass, and the CPU time the process used; then the
// job's images per second and CPU milliseconds per image (every rank's CPU time together, which
// the machine's other load disturbs far less than wall-clock time).
//   residual bench parallel --model resnet20 --image-size 32 --batch-size 32 --threads 1          one process
//   residual bench parallel --nproc 2 --model resnet20 --image-size 32 --batch-size 32 --threads 1  two ranks
using System.Diagnostics;
using System.Globalization;
using ResidualEngine.Distributed;
using ResidualEngine.Models;
using ResidualEngine.Nn.Optim;
using ResidualEngine.Tools.Cli;
using ResidualEngine.Training;
using ResidualEngine.Training.Distributed;

namespace ResidualEngine.Tools.Bench;

public static class ParallelBench
{
    private const int Fields = 5; // median step ms, all-reduce ms/step, waited ms/step, CPU s, threads

    /// <param name="words">The command line after `bench parallel` (what the ranks are started with, minus --nproc).</param>
    public static int Run(Args a, IReadOnlyList<string> words)
    {
        ArgumentNullException.ThrowIfNull(a);
        var model = a.String("model") ?? "resnet20";
        int batch = a.Int("batch-size", 32, 1, 65536), steps = a.Int("steps", 20, 1, 100_000), warmup = a.Int("warmup", 3, 0, 100_000);
        int? imageSize = a.String("image-size") is null ? null : a.Int("image-size", 0, 8, 4096);
        int threads = a.Int("threads", 0, 0, 1024), nproc = a.Int("nproc", 1, 1, 1024);
        double bucketMb = a.Double("bucket-mb", 25, 0.001, 4096);
        a.RejectUnknown();
        ZooInfo.Of(model);
        if (nproc > 1) return Commands.TrainLauncher.Run(nproc, words, Console.Error, "bench", "parallel");

        ProcessGroup group = LaunchEnvironment.Detect() is { WorldSize: > 1 } ? MpiProcessGroup.World() : SingleProcessGroup.Instance;
        int code = DistributedJob.Run(group, "residual bench parallel", () => Measure(group, model, batch, imageSize, steps, warmup, threads, bucketMb));
        group.Dispose();
        return code;
    }

    private static int Measure(ProcessGroup g, string name, int batch, int? imageSize, int steps, int warmup, int threads, double bucketMb)
    {
        int used = threads > 0 ? threads : Math.Max(1, Environment.ProcessorCount / Math.Max(1, g.LocalSize));
        using var threadScope = ThreadControl.Apply(used);
        var info = ZooInfo.Of(name);
        int size = imageSize ?? info.NativeImageSize;
        using var model = ModelZoo.Create(name, info.DefaultClasses, seed: 1);
        model.Train();
        var rng = new Random(10 + g.Rank); // each rank its own batch, as in training
        using var x = TensorScope.Detach(Tensor.Randn(new Shape(batch, 3, size, size), rng));
        using var y = TensorScope.Detach(Tensor.FromArray(Enumerable.Range(0, batch).Select(_ => (long)rng.Next(info.DefaultClasses)).ToArray(), new Shape(batch)));
        using var sgd = Sgd.ForModule(model, 0.01, ModelBench.Momentum, ModelBench.WeightDecay);
        var step = new TrainingStep(model, sgd);
        using var ddp = g.Size > 1 ? new DistributedDataParallel(model, g, (long)(bucketMb * (1 << 20))) : null;
        if (ddp is not null) step.Hooks.Add(ddp);
        if (g.IsLeader)
        {
            var buckets = ddp is not null ? $", {ddp.Buckets.Count} gradient bucket(s) over {g.Description}" : "";
            Console.WriteLine($"residual bench parallel: {name} at {size} px, {g.Size} process(es) x batch {batch} x {used} thread(s), {warmup} warm-up + {steps} timed steps{buckets}");
        }

        var times = new List<double>();
        double comm = 0, waited = 0;
        TimeSpan cpu0 = TimeSpan.Zero;
        for (int i = 0; i < warmup + steps; i++)
        {
            if (i == warmup) cpu0 = CpuTime();
            long t0 = Stopwatch.GetTimestamp();
            using (TensorScope.Begin()) step.Run(x, y).Dispose();
            if (i < warmup) continue;
            times.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            if (ddp is not null) { comm += ddp.LastStep.CommunicationSeconds * 1000; waited += ddp.LastStep.ExposedSeconds * 1000; }
        }
        double cpu = (CpuTime() - cpu0).TotalSeconds;
        var mine = new[] { Stats.Median(times), comm / steps, waited / steps, cpu, used };
        var all = g.AllGather(System.Runtime.InteropServices.MemoryMarshal.AsBytes(mine.AsSpan()));
        if (g.IsLeader) Print(g.Size, batch, steps, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(all).ToArray());
        return 0;
    }

    private static void Print(int ranks, int batch, int steps, double[] v)
    {
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine("rank  threads  step ms (median)  all-reduce ms/step  waited ms/step  hidden  CPU s");
        double slowest = 0, cpu = 0;
        for (int r = 0; r < ranks; r++)
        {
            double step = v[r * Fields], comm = v[r * Fields + 1], wait = v[r * Fields + 2];
            string hidden = comm > 0 ? (100 * Math.Clamp(1 - wait / comm, 0, 1)).ToString("F0", inv) + "%" : "-";
            Console.WriteLine(string.Create(inv, $"{r,4}  {v[r * Fields + 4],7:F0}  {step,16:F1}  {comm,18:F1}  {wait,14:F1}  {hidden,6}  {v[r * Fields + 3],5:F2}"));
            slowest = Math.Max(slowest, step);
            cpu += v[r * Fields + 3];
        }
        Console.WriteLine(string.Create(inv,
            $"job: {ranks * batch * 1000.0 / slowest:F1} images/s (global batch {ranks * batch}, slowest rank's median step), {1000 * cpu / (steps * ranks * batch):F2} CPU ms per image"));
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, load average {File.ReadAllText("/proc/loadavg").Split(' ').Take(3).Aggregate((p, q) => p + " " + q)}");
    }

    private static TimeSpan CpuTime()
    {
        using var p = Process.GetCurrentProcess();
        return p.TotalProcessorTime;
    }
}
