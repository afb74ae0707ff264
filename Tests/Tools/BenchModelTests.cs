// A real (tiny) whole-model benchmark: ResNet-20 at batch 2, 32 px, on the CPU. Checks the JSON
// schema shared with the PyTorch baseline, that the numbers are consistent with each other, and
// that --profile files convolutions under forward and backward and the SGD update under optimizer.
using System.Text.Json;
using NUnit.Framework;
using ResidualEngine.Tools.Cli;
using ResidualEngine.Backends.Cuda;
using ResidualEngine.Tools.Bench;
using ResidualEngine.Tools.Commands;

namespace ResidualEngine.Tests.Tools;

[NonParallelizable]
public class BenchModelTests
{
    private static readonly string[] Fields =
    [
        "engine", "engine_version", "model", "mode", "device", "device_name", "batch_size", "image_size", "num_classes",
        "precision", "format", "threads", "warmup", "steps", "seed", "ms_per_step", "images_per_sec", "peak_memory_bytes",
        "peak_memory_kind", "process_peak_rss_bytes", "parameters", "gmacs_per_image", "gflop_per_image", "gflop_note", "samples_ms",
    ];

    [TestCase("bf16", "nhwc")]
    [TestCase("fp16", "nchw")]
    public void MixedPrecisionAndChannelsLastBenchRun(string precision, string format)
    {
        var path = Path.Combine(Path.GetTempPath(), $"residual-bench-{Guid.NewGuid():N}.json");
        try
        {
            int rc = CliApp.Run(["bench", "--model", "resnet20", "--batch-size", "2", "--image-size", "16", "--warmup", "0", "--steps", "1",
                "--device", "cpu", "--threads", "1", "--precision", precision, "--format", format, "--json", path]);
            Assert.That(rc, Is.Zero);
            var r = BenchResult.FromJson(File.ReadAllText(path));
            Assert.That((r.Precision, r.Format), Is.EqualTo((precision, format)));
            Assert.That(r.Tf32, Does.Contain("TF32"), "the TF32 policy is recorded");
            Assert.That(double.IsFinite(r.FinalLoss ?? double.NaN), Is.True, "the step computed a finite loss");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void TinyTrainBenchWritesTheSharedJsonSchema()
    {
        var path = Path.Combine(Path.GetTempPath(), $"residual-bench-{Guid.NewGuid():N}.json");
        try
        {
            int rc = CliApp.Run(["bench", "--model", "resnet20", "--batch-size", "2", "--image-size", "32", "--warmup", "1", "--steps", "2",
                "--device", "cpu", "--threads", "1", "--json", path]);
            Assert.That(rc, Is.Zero);
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var root = doc.RootElement;
            foreach (var f in Fields) Assert.That(root.TryGetProperty(f, out _), Is.True, $"field {f} is missing");
            Assert.That(root.GetProperty("engine").GetString(), Is.EqualTo("residual"));
            Assert.That(root.GetProperty("mode").GetString(), Is.EqualTo("train"));
            Assert.That(root.GetProperty("num_classes").GetInt32(), Is.EqualTo(10));
            Assert.That(root.GetProperty("threads").GetInt32(), Is.EqualTo(1));
            // He et al.: ResNet-20 has 0.27M parameters (torchvision-style count 269,722).
            Assert.That(root.GetProperty("parameters").GetInt64(), Is.EqualTo(269_722));
            var samples = root.GetProperty("samples_ms").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            Assert.That(samples, Has.Length.EqualTo(2));
            var ms = root.GetProperty("ms_per_step");
            double median = ms.GetProperty("median").GetDouble();
            Assert.That(median, Is.EqualTo(samples.Average()).Within(1e-9), "the median of two samples is their mean");
            Assert.That(ms.GetProperty("min").GetDouble(), Is.EqualTo(samples.Min()));
            Assert.That(ms.GetProperty("max").GetDouble(), Is.EqualTo(samples.Max()));
            Assert.That(root.GetProperty("images_per_sec").GetDouble(), Is.EqualTo(2 * 1000.0 / median).Within(1e-9));
            double gmacs = root.GetProperty("gmacs_per_image").GetDouble();
            Assert.That(gmacs, Is.EqualTo(0.0406).Within(0.001), "ResNet-20 forward is about 41 M multiply-accumulates");
            Assert.That(root.GetProperty("gflop_per_image").GetDouble(), Is.EqualTo(6 * gmacs).Within(1e-12));
            Assert.That(root.GetProperty("peak_tensor_bytes").GetInt64(), Is.GreaterThan(269_722L * 4), "parameters alone are ~1 MB");
            Assert.That(double.IsFinite(root.GetProperty("final_loss").GetDouble()), Is.True);
            // And our record reads it back.
            var back = BenchResult.FromJson(File.ReadAllText(path));
            Assert.That(back.Parameters, Is.EqualTo(269_722));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void ProfileSplitsForwardBackwardAndOptimizer()
    {
        var r = ModelBench.Run(new BenchConfig { Model = "resnet20", BatchSize = 2, ImageSize = 16, Warmup = 0, Steps = 1, Profile = true });
        Assert.That(r.Profile, Is.Not.Null);
        var rows = r.Profile!;
        Assert.That(rows.Any(x => x.Phase == OpProfiler.Forward && x.Op == "ConvForward" && x.Calls == 19), Is.True, "19 convolutions in ResNet-20");
        Assert.That(rows.Any(x => x.Phase == OpProfiler.Backward && x.Op == "ConvBackwardFilter"), Is.True);
        Assert.That(rows.Any(x => x.Phase == OpProfiler.Optimizer && x.Op == "SgdUpdate"), Is.True);
        Assert.That(rows.Any(x => x.Phase == "conv" && x.Op.StartsWith("ConvForward x(2, 16, 16, 16)", StringComparison.Ordinal)), Is.True);
        Assert.That(ResidualEngine.Backends.BackendRegistry.Interceptor, Is.Null, "the profiler uninstalls itself");
    }

    [Test]
    public void InferModeRunsWithoutAnOptimizer()
    {
        var r = ModelBench.Run(new BenchConfig { Model = "plain20", Mode = BenchMode.Infer, BatchSize = 2, ImageSize = 16, Warmup = 0, Steps = 1 });
        Assert.That(r.Mode, Is.EqualTo("infer"));
        Assert.That(r.GflopPerImage, Is.EqualTo(2 * r.GmacsPerImage).Within(1e-12));
        Assert.That(r.FinalLoss, Is.Null);
    }

    [Test]
    public void CompareWithoutPyTorchStillReportsOurs()
    {
        // Ours runs in a child `residual bench` process; the missing Python only costs the PyTorch column.
        var path = Path.Combine(Path.GetTempPath(), $"residual-compare-{Guid.NewGuid():N}.json");
        try
        {
            int rc = CliApp.Run(["bench", "compare", "--model", "resnet20", "--batch-size", "2", "--image-size", "16", "--warmup", "0",
                "--steps", "1", "--device", "cpu", "--python", "/no/such/python", "--json", path]);
            Assert.That(rc, Is.Zero);
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var row = doc.RootElement.GetProperty("rows")[0];
            Assert.That(row.GetProperty("config").GetString(), Does.StartWith("resnet20 train b2 16px cpu"));
            Assert.That(row.GetProperty("pytorch").ValueKind, Is.EqualTo(JsonValueKind.Null));
            Assert.That(row.GetProperty("ours").GetProperty("images_per_sec").GetDouble(), Is.GreaterThan(0));
            Assert.That(row.GetProperty("ours").GetProperty("peak_memory_bytes").GetInt64(), Is.GreaterThan(0),
                "a fresh process grows by at least the model");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void BenchRestoresTheThreadCount()
    {
        int before = ResidualEngine.Backends.Cpu.CpuBackend.Threads;
        var r = ModelBench.Run(new BenchConfig { Model = "resnet20", BatchSize = 1, ImageSize = 8, Warmup = 0, Steps = 1, Threads = 1 });
        Assert.That(r.Threads, Is.EqualTo(1));
        Assert.That(ResidualEngine.Backends.Cpu.CpuBackend.Threads, Is.EqualTo(before));
    }

    [Test]
    [Category("Gpu")]
    public void CudaTrainBenchReportsAllocatorPeak()
    {
        if (!CudaBackend.IsAvailable(out var reason)) Assert.Ignore("GPU test skipped: " + reason);
        var gpu = (CudaBackend)ResidualEngine.Backends.BackendRegistry.Get(Device.Cuda());
        bool benchmarkWas = gpu.CudnnBenchmark;
        var r = ModelBench.Run(new BenchConfig { Model = "resnet20", BatchSize = 2, ImageSize = 16, Device = Device.Cuda(), Warmup = 0, Steps = 1 });
        Assert.That(r.Device, Is.EqualTo("cuda:0"));
        Assert.That(r.AllocatorPeakBytes, Is.GreaterThanOrEqualTo(r.PeakTensorBytes!.Value), "the allocator holds at least the tensors' bytes");
        Assert.That(r.PeakTensorBytes, Is.GreaterThan(269_722L * 4));
        Assert.That(r.PeakMemoryBytes, Is.EqualTo(r.AllocatorPeakBytes));
        Assert.That(double.IsFinite(r.FinalLoss!.Value), Is.True);
        Assert.That(gpu.CudnnBenchmark, Is.EqualTo(benchmarkWas), "the backend's settings are restored");
    }

    [Test]
    public void UnknownModelIsAnArgumentError()
    {
        var e = Assert.Throws<ArgumentException>(() => ModelBench.Run(new BenchConfig { Model = "resnet19", Steps = 1 }));
        Assert.That(e!.Message, Does.Contain("resnet19"));
    }

    [Test]
    public void CommandRejectsUnknownKindsAndOptions()
    {
        Assert.That(CliApp.Run(["bench", "frobnicate"], TextWriter.Null, TextWriter.Null), Is.EqualTo(2));
        Assert.That(CliApp.Run(["bench", "--model", "resnet20", "--bogus", "1"], TextWriter.Null, TextWriter.Null), Is.EqualTo(2));
        Assert.That(CliApp.Run(["bench", "--model", "resnet20", "--batch-size", "0"], TextWriter.Null, TextWriter.Null), Is.EqualTo(2), "out of range");
        Assert.That(CliApp.Run(["bench", "--model", "resnet20", "--precision", "int8"], TextWriter.Null, TextWriter.Null), Is.EqualTo(2), "unknown precision");
        Assert.That(CliApp.Run(["bench", "data"], TextWriter.Null, TextWriter.Null), Is.EqualTo(2), "bench data needs --data");
    }
}
