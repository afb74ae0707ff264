// `residual bench`: whole-model step timing (train or infer), the input pipeline alone
// (`bench data`), and ours vs PyTorch side by side (`bench compare`, what `./build.sh bench` runs).
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using ResidualEngine.Backends.Cuda;
using ResidualEngine.Tools.Bench;
using ResidualEngine.Tools.Cli;

namespace ResidualEngine.Tools.Commands;

public static class BenchCommand
{
    private const string Usage = """
        usage: residual bench [--model NAME] [options]          time whole train or inference steps
               residual bench compare [--model NAME ...] [options] [--repeat R] [--quick]
                                                               ours, then PyTorch on the same config
               residual bench data --data DIR [--workers N] [--batch-size B] [--image-size S] [--batches K]
                                                               the input pipeline alone (decode + augment)

        options (bench and bench compare):
          --model NAME        zoo model (resnet18, resnet50, resnet20, plain56, ...; see `residual models`);
                              compare accepts several --model options, one row each
          --batch-size N      images per step (bench: 16; compare: 16, --quick: 4)
          --image-size S      input height and width (default: the model's native size; compare: 224)
          --num-classes K     classes of the head (default: the model's)
          --device D          cpu, cuda or cuda:N (compare: cuda when present, else cpu)
          --mode M            train (forward + loss + backward + SGD step) or infer (forward, no grad)
          --warmup W          untimed steps first (bench: 2; compare: 1)
          --steps K           timed steps (bench: 10; compare: 5, --quick: 2)
          --threads T         CPU threads for ours and for PyTorch (0 = all cores; compare: all cores)
          --precision P       fp32 (fp16 and bf16 are not supported yet)
          --format F          nchw (nhwc is not supported yet)
          --seed N            seed of the synthetic inputs and of the weights
          --json FILE         write the result(s) as JSON
          --profile           (bench) per-op time table, forward and backward separately
          --repeat R          (compare) run ours then PyTorch R times, back to back
          --quick             (compare) batch 4 at 112 px, 1 warm-up and 2 timed steps
          --in-process        (compare) run ours inside this process (default: a fresh process per run, as PyTorch's,
                              so that each peak-memory figure is that run's own)
          --python PATH       (compare) the Python with torch (else RESIDUAL_PYTHON, /opt/torch/.venv/bin/python,
                              /usr/bin/python3, python3: the first that imports torch)
        """;

    private static readonly string[] Flags = ["profile", "quick", "in-process"];

    public static int Run(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var a = new Args(args, Flags);
        if (a.Help) { Console.WriteLine(Usage); return 0; }
        var verb = a.Positional.Count > 0 ? a.Positional[0] : "model";
        if (a.Positional.Count > 1) throw new ArgumentException($"unexpected argument '{a.Positional[1]}'");
        return verb switch
        {
            "model" or "train" or "infer" => RunModel(a, verb),
            "compare" => RunCompare(a),
            "data" => DataBench.Run(a),
            _ => throw new ArgumentException($"unknown bench kind '{verb}': expected compare, data, or options of a model bench (see --help)"),
        };
    }

    /// <summary>Defaults of `residual bench`.</summary>
    public static BenchConfig ModelDefaults { get; } = new();

    /// <summary>Defaults of `residual bench compare` (and so of `./build.sh bench`): a few ResNet-18
    /// training steps at 224 px on every core, on the GPU when there is one.</summary>
    public static BenchConfig CompareDefaults(bool quick) => new()
    {
        Model = "resnet18",
        BatchSize = quick ? 4 : 16,
        ImageSize = quick ? 112 : 224,
        Device = CudaAvailable() ? Device.Cuda() : Device.Cpu,
        Warmup = 1,
        Steps = quick ? 2 : 5,
        Threads = Environment.ProcessorCount,
    };

    private static int RunModel(Args a, string verb)
    {
        var defaults = verb == "infer" ? ModelDefaults with { Mode = BenchMode.Infer } : ModelDefaults;
        var cfg = BenchConfig.Parse(a, defaults);
        var json = a.String("json");
        a.RejectUnknown();
        ZooInfo.Of(cfg.Model); // an unknown name fails here, before anything is printed
        Console.WriteLine($"residual bench: {cfg.Model} {cfg.ModeName}, batch {cfg.BatchSize}, device {cfg.DeviceName}, {cfg.Warmup} warm-up + {cfg.Steps} timed steps");
        var r = ModelBench.Run(cfg, Console.Out);
        Console.WriteLine(Report(r));
        if (r.Profile is { Count: > 0 } rows)
        {
            Console.WriteLine(OpProfiler.Format(rows.Where(x => x.Phase != "conv").ToList(), "per-op time (ms per timed step):"));
            Console.WriteLine(OpProfiler.Format(rows.Where(x => x.Phase == "conv").ToList(), "slowest convolution shapes (% of all profiled time):", subtotals: false));
            Console.WriteLine($"note: {r.ProfileNote}");
        }
        if (json is not null)
        {
            BenchResult.WriteFile(json, r.ToJson());
            Console.WriteLine($"wrote {json}");
        }
        return 0;
    }

    /// <summary>The human-readable summary of one result.</summary>
    public static string Report(BenchResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var m = r.MsPerStep;
        double tflops = r.GflopPerImage * r.ImagesPerSec / 1000;
        return string.Create(CultureInfo.InvariantCulture, $"""
              {r.Model} {r.Mode} on {r.Device} ({r.DeviceName}), batch {r.BatchSize}, {r.ImageSize}x{r.ImageSize}, {r.Threads} threads, {r.Precision} {r.Format}
              ms/step: median {m.Median:F2} (min {m.Min:F2}, p10 {m.P10:F2}, p90 {m.P90:F2}, max {m.Max:F2}) over {r.Steps} steps
              images/s: {r.ImagesPerSec:F1}   compute: {r.GflopPerImage:F3} GFLOP/img ({r.GflopNote}) = {tflops:F3} TFLOP/s
              parameters: {r.Parameters:N0}   peak memory: {CompareTable.Mb(r.PeakMemoryBytes)} MB ({r.PeakMemoryKind}){(r.PeakTensorBytes is { } t ? $"; live tensors peak {CompareTable.Mb(t)} MB" : "")}{(r.AllocatorReservedBytes is { } rb ? $"; reserved {CompareTable.Mb(rb)} MB" : "")}
            """);
    }

    private static int RunCompare(Args a)
    {
        bool quick = a.Flag("quick");
        var defaults = CompareDefaults(quick);
        var models = a.Strings("model").ToList();
        var cfg = BenchConfig.Parse(a, defaults);
        if (cfg.Profile) throw new ArgumentException("--profile is not available with compare (use `residual bench --profile`)");
        int repeat = a.Int("repeat", 1, 1, 100);
        var json = a.String("json");
        var python = a.String("python");
        bool inProcess = a.Flag("in-process");
        a.RejectUnknown();
        if (models.Count == 0) models.Add(cfg.Model);
        if (cfg.Device.Type == DeviceType.Cpu && cfg.Threads == 0) cfg = cfg with { Threads = Environment.ProcessorCount };

        var probe = PythonBaseline.Find(python is null ? PythonBaseline.DefaultCandidates() : [python]);
        var script = PythonBaseline.FindScript();
        string? skip = !probe.Found ? probe.Explain()
            : script is null ? $"the baseline script {PythonBaseline.ScriptName} is not next to the tool or under Tools/bench/" : null;
        if (skip is not null) Console.Error.WriteLine($"residual bench compare: PyTorch baseline skipped: {skip}");
        else Console.WriteLine($"PyTorch baseline: {probe.Python} (torch {probe.TorchVersion})");

        var rows = new List<CompareRow>();
        var commands = new List<string>();
        for (int rep = 0; rep < repeat; rep++)
        {
            foreach (var model in models)
            {
                var c = cfg with { Model = model };
                Console.WriteLine($"[{rep + 1}/{repeat}] ours: {model} {c.ModeName} b{c.BatchSize} on {c.DeviceName}");
                var ours = inProcess ? ModelBench.Run(c) : IsolatedRun.Run(c, timeoutMs: 3_600_000);
                Console.WriteLine(Report(ours));
                BenchResult? torch = null;
                if (skip is null)
                {
                    Console.WriteLine($"[{rep + 1}/{repeat}] PyTorch: {model}");
                    var (res, err, cmd) = PythonBaseline.Run(probe.Python!, script!, c.ToArgs(ours.ImageSize, ours.NumClasses), timeoutMs: 3_600_000);
                    if (!commands.Contains(cmd)) commands.Add(cmd);
                    if (res is null) Console.Error.WriteLine($"residual bench compare: PyTorch baseline failed: {err}");
                    else
                    {
                        torch = res;
                        Console.WriteLine(Report(res));
                    }
                }
                rows.Add(new CompareRow(c.Label(ours.ImageSize, ours.Threads), ours, torch));
            }
        }

        Console.WriteLine();
        Console.WriteLine(CompareTable.Markdown(rows));
        Console.Write(CompareTable.BestSteps(rows));
        Console.WriteLine($"ratio = ours img/s / PyTorch img/s (above 1: ours is faster). Peak memory: {rows[0].Ours.PeakMemoryKind} (ours)" +
            (rows[0].Torch is { } t0 ? $"; {t0.PeakMemoryKind} (PyTorch)." : "."));
        Console.WriteLine($"machine: {MachineInfo.Describe()}; ours: {rows[0].Ours.EngineVersion}" + (probe.Found ? $"; PyTorch: torch {probe.TorchVersion}" : ""));
        foreach (var cmd in commands) Console.WriteLine($"baseline command: {cmd}");
        if (json is not null)
        {
            BenchResult.WriteFile(json, CompareJson(rows, probe));
            Console.WriteLine($"wrote {json}");
        }
        return 0;
    }

    private static string CompareJson(IReadOnlyList<CompareRow> rows, PythonProbe probe)
    {
        var arr = new JsonArray();
        foreach (var r in rows)
        {
            arr.Add(new JsonObject
            {
                ["config"] = r.Config,
                ["ratio"] = r.Ratio,
                ["ours"] = JsonNode.Parse(r.Ours.ToJson()),
                ["pytorch"] = r.Torch is null ? null : JsonNode.Parse(r.Torch.ToJson()),
            });
        }
        var root = new JsonObject
        {
            ["machine"] = MachineInfo.Describe(),
            ["python"] = probe.Python,
            ["rows"] = arr,
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>True when a CUDA backend can be created for device 0.</summary>
    public static bool CudaAvailable() => CudaBackend.IsAvailable(out _);
}
