// `residual bench --model ...`: times whole training or inference steps of a zoo model on
// synthetic, seeded inputs that already sit on the device (no data loading). A train step is the
// shared TrainingStep: forward + softmax cross-entropy + backward + SGD (momentum 0.9, weight decay 1e-4), all inside
// one TensorScope, exactly what Tools/bench/pytorch_baseline.py does on the PyTorch side.
using System.Diagnostics;
using System.Globalization;
using ResidualEngine.Autograd;
using ResidualEngine.Backends;
using ResidualEngine.Backends.Cuda;
using ResidualEngine.Nn;
using ResidualEngine.Nn.Optim;
using ResidualEngine.Training;

namespace ResidualEngine.Tools.Bench;

public static class ModelBench
{
    public const double Momentum = 0.9, WeightDecay = 1e-4;

    /// <summary>Runs warm-up and timed steps; writes progress to <paramref name="log"/> when given.</summary>
    public static BenchResult Run(BenchConfig cfg, TextWriter? log = null)
    {
        ArgumentNullException.ThrowIfNull(cfg);
        using var threadScope = ThreadControl.Apply(cfg.Threads);
        int threads = threadScope.Threads;
        var info = ZooInfo.Of(cfg.Model);
        int imageSize = cfg.ImageSize ?? info.NativeImageSize;
        int numClasses = cfg.NumClasses ?? info.DefaultClasses;
        var backend = BackendRegistry.Get(cfg.Device);
        var cudaBackend = backend as CudaBackend;
        var (benchmarkWas, tf32Was) = (cudaBackend?.CudnnBenchmark ?? false, cudaBackend?.AllowTf32 ?? false);
        if (cudaBackend is not null)
        {
            // As the baseline: cuDNN picks algorithms by timing them (torch.backends.cudnn.benchmark), no TF32.
            // Both are settings of the shared backend object, restored at the end.
            cudaBackend.CudnnBenchmark = true;
            cudaBackend.AllowTf32 = false;
            cudaBackend.Allocator.ResetPeak();
        }
        try
        {
            return RunSteps(cfg, log, threads, imageSize, numClasses, backend);
        }
        finally
        {
            if (cudaBackend is not null)
            {
                cudaBackend.CudnnBenchmark = benchmarkWas;
                cudaBackend.AllowTf32 = tf32Was;
            }
        }
    }

    private static BenchResult RunSteps(BenchConfig cfg, TextWriter? log, int threads, int imageSize, int numClasses, IBackend backend)
    {
        using var profiler = cfg.Profile ? new OpProfiler() : null;
        using var memory = new MemoryProbe(cfg.Device);
        using var model = ZooInfo.Create(cfg.Model, numClasses, cfg.Seed);
        model.To(cfg.Device);
        bool train = cfg.Mode == BenchMode.Train;
        model.Train(train);
        long parameters = model.ParameterCount();
        double gmacs = ZooInfo.GMacsPerImage(model, imageSize);

        var rng = new Random(cfg.Seed);
        using var x = Tensor.Randn(new Shape(cfg.BatchSize, 3, imageSize, imageSize), rng, DType.F32, 1.0, cfg.Device);
        var labelValues = new long[cfg.BatchSize];
        for (int i = 0; i < labelValues.Length; i++) labelValues[i] = rng.Next(numClasses);
        using var labels = Tensor.FromArray(labelValues, new Shape(cfg.BatchSize), cfg.Device);
        using var sgd = train ? Sgd.ForModule(model, cfg.LearningRate, Momentum, WeightDecay, nesterov: false, noBnWeightDecay: false) : null;
        var probe = new PhaseProbe(profiler);
        var step = sgd is null ? null : new TrainingStep(model, sgd) { Hooks = { probe } };

        var samples = new List<double>(cfg.Steps);
        double lastLoss = double.NaN;
        TimeSpan user0 = TimeSpan.Zero, sys0 = TimeSpan.Zero;
        for (int i = 0; i < cfg.Warmup + cfg.Steps; i++)
        {
            bool timed = i >= cfg.Warmup;
            if (i == cfg.Warmup) (user0, sys0) = CpuTimes();
            if (profiler is not null) profiler.Phase = timed ? OpProfiler.Forward : OpProfiler.Setup;
            backend.Synchronize();
            long t0 = Stopwatch.GetTimestamp();
            using (TensorScope.Begin())
            {
                if (train)
                {
                    probe.Timed = timed;
                    var r = step!.Run(x, labels);
                    if (i == cfg.Warmup + cfg.Steps - 1) lastLoss = LossValue(r.Loss, profiler);
                }
                else
                {
                    using var noGrad = GradMode.NoGrad();
                    model.Forward(x);
                }
                backend.Synchronize();
            }
            double ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            if (timed) samples.Add(ms);
            log?.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {(timed ? "step" : "warm-up")} {i + 1 - (timed ? cfg.Warmup : 0)}: {ms:F1} ms"));
        }
        if (profiler is not null) { profiler.Phase = null; profiler.Steps = cfg.Steps; }
        var (user1, sys1) = CpuTimes();
        double cpuSeconds = (user1 - user0 + sys1 - sys0).TotalSeconds;

        var summary = Summary.Of(samples);
        bool cuda = cfg.Device.Type == DeviceType.Cuda;
        long peakRss = MemoryProbe.PeakRssBytes();
        var allocator = (backend as CudaBackend)?.Allocator.Stats;
        return new BenchResult
        {
            Engine = "residual",
            EngineVersion = "ResidualEngine " + (typeof(Tensor).Assembly.GetName().Version?.ToString() ?? "?") + $", .NET {Environment.Version}",
            Model = cfg.Model,
            Mode = cfg.ModeName,
            Device = cfg.DeviceName,
            DeviceName = backend is CudaBackend cb ? $"{cb.Info.Name} (sm_{cb.Info.Major}{cb.Info.Minor})" : MachineInfo.CpuModel(),
            BatchSize = cfg.BatchSize,
            ImageSize = imageSize,
            NumClasses = numClasses,
            Precision = cfg.Precision,
            Format = cfg.Format,
            Threads = threads,
            Warmup = cfg.Warmup,
            Steps = cfg.Steps,
            Seed = cfg.Seed,
            MsPerStep = StepTimes.From(summary),
            ImagesPerSec = cfg.BatchSize * 1000.0 / summary.Median,
            // On CUDA the allocator's peak counts what torch.cuda.max_memory_allocated counts: every live
            // block (tensors and cuDNN workspaces) at its rounded size.
            PeakMemoryBytes = cuda ? allocator?.PeakAllocatedBytes ?? memory.PeakTensorBytes : Math.Max(0, peakRss - memory.BaselineRssBytes),
            PeakMemoryKind = cuda
                ? "caching allocator peak of allocated bytes (tensors + cuDNN workspaces, rounded blocks; incl. parameters)"
                : "process peak RSS minus RSS before the model was built (/proc VmHWM)",
            PeakTensorBytes = memory.PeakTensorBytes,
            ProcessPeakRssBytes = peakRss,
            AllocatorPeakBytes = allocator?.PeakAllocatedBytes,
            AllocatorReservedBytes = memory.ReservedBytes,
            Parameters = parameters,
            GmacsPerImage = gmacs,
            GflopPerImage = 2 * gmacs * (train ? 3 : 1),
            GflopNote = train ? "2 x GMACs x 3 (forward + backward)" : "2 x GMACs (forward)",
            SamplesMs = samples,
            Profile = profiler?.Rows().Concat(profiler.ConvDetails()).ToList(),
            ProfileNote = profiler is null ? null : cuda
                ? "CUDA: host timer with a device synchronisation around every op (serialises the queue; totals exceed an unprofiled step)"
                : "CPU: Stopwatch around every backend call; step times above include the profiler's small overhead",
            FinalLoss = double.IsNaN(lastLoss) ? null : lastLoss,
            SystemTimeFraction = cpuSeconds > 0 ? (sys1 - sys0).TotalSeconds / cpuSeconds : null,
            CpuMsPerStep = cfg.Steps > 0 ? cpuSeconds * 1000 / cfg.Steps : null,
        };
    }

    /// <summary>Moves the profiler to the next phase after the forward and backward passes.</summary>
    private sealed class PhaseProbe(OpProfiler? profiler) : ITrainingHook
    {
        public bool Timed { get; set; }

        public void AfterForward(StepContext step)
        {
            if (profiler is not null && Timed) profiler.Phase = OpProfiler.Backward;
        }

        public void BeforeOptimizerStep(StepContext step)
        {
            if (profiler is not null && Timed) profiler.Phase = OpProfiler.Optimizer;
        }
    }

    /// <summary>This process's user and system CPU time so far.</summary>
    private static (TimeSpan User, TimeSpan System) CpuTimes()
    {
        using var p = Process.GetCurrentProcess();
        return (p.UserProcessorTime, p.PrivilegedProcessorTime);
    }

    private static double LossValue(Tensor loss, OpProfiler? profiler)
    {
        var phase = profiler?.Phase;
        if (profiler is not null) profiler.Phase = null;
        var v = loss.Item();
        if (profiler is not null) profiler.Phase = phase;
        return v;
    }
}
