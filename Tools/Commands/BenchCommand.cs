// `residual bench`: whole-model step timing (train or infer), the input pipeline alone
// (`bench data`), ours vs PyTorch side by side (`bench compare`, what `./build.sh bench` runs),
// end to end on an image folder against the plain PyTorch loop (`bench epoch`), and the cost of
// data-parallel training (`bench parallel`).
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using ResidualEngine.Backends.Cuda;
using ResidualEngine.Tools.Bench;
using System.CommandLine;
using ResidualEngine.Tools.Cli;

namespace ResidualEngine.Tools.Commands;

public static class BenchCommand
{
    public static Command Create()
    {
        var bench = new Command("bench", "Time whole training or inference steps of a zoo model (see also: compare, data).");
        AddModelOptions(bench, multipleModels: false);
        bench.Options.Add(Flag("--profile", "per-op time table, forward and backward separately"));
        bench.SetAction(parse => RunModel(CliApp.ToArgs(parse), "model"));
        foreach (var mode in new[] { "train", "infer" })
        {
            var c = new Command(mode, $"As `residual bench --mode {mode}`.");
            AddModelOptions(c, multipleModels: false);
            c.Options.Add(Flag("--profile", "per-op time table, forward and backward separately"));
            c.SetAction(parse => RunModel(CliApp.ToArgs(parse), mode));
            bench.Subcommands.Add(c);
        }

        var compare = new Command("compare", "Ours, then PyTorch on the same configuration (what `./build.sh bench` runs). " +
            "Defaults: resnet18, batch 16 at 224 px, 1 warm-up + 5 timed steps on every core, on CUDA when present.");
        AddModelOptions(compare, multipleModels: true);
        compare.Options.Add(Value("--repeat", "run ours then PyTorch R times, back to back (default 1)", "R"));
        compare.Options.Add(Flag("--quick", "batch 4 at 112 px, 1 warm-up and 2 timed steps"));
        compare.Options.Add(Flag("--in-process", "run ours inside this process (default: a fresh process per run, as PyTorch's, so each peak-memory figure is that run's own)"));
        compare.Options.Add(Value("--python", "the Python with torch (else RESIDUAL_PYTHON, /opt/torch/.venv/bin/python, /usr/bin/python3, python3: the first that imports torch)", "PATH"));
        compare.SetAction(parse => RunCompare(CliApp.ToArgs(parse)));
        bench.Subcommands.Add(compare);

        var data = new Command("data", "The input pipeline alone (decode + augment), in images per second.")
        {
            new Option<string>("--data") { Description = "an ImageFolder, or a folder with train/ and val/", HelpName = "DIR", Required = true },
            Value("--workers", "decoding threads (default: cores - 1)", "N"),
            Value("--batch-size", "images per batch (default 64)", "N"),
            Value("--image-size", "crop size (default 224)", "S"),
            Value("--batches", "batches to time (default: one epoch)", "K"),
            Value("--warmup", "untimed batches first (default 2)", "W"),
            Value("--transform", "train (default), eval or cifar", "T"),
            Value("--json", "write the result as JSON", "FILE"),
        };
        data.SetAction(parse => DataBench.Run(CliApp.ToArgs(parse)));
        bench.Subcommands.Add(data);

        var epoch = new Command("epoch", "End to end on an image folder: `residual train --augment cifar` against the plain PyTorch loop " +
            "(Tools/bench/pytorch_train_loop.py), alternating, each in a fresh process; seconds per epoch including evaluation.")
        {
            new Option<string>("--data") { Description = "a folder with train/ and val/ class folders", HelpName = "DIR", Required = true },
            Value("--model", "zoo model (default resnet20)", "NAME"),
            Value("--image-size", "crop size (default 32)", "S"),
            Value("--batch-size", "images per step (default 128)", "N"),
            Value("--epochs", "epochs per run (default 1)", "N"),
            Value("--workers", "loader workers on both sides (default 2)", "N"),
            Value("--repeat", "runs of each, alternating (default 1)", "R"),
            Value("--python", "the Python with torch and torchvision (as for compare)", "PATH"),
            Value("--json", "write every epoch's times as JSON", "FILE"),
        };
        epoch.SetAction(parse => EpochBench.Run(CliApp.ToArgs(parse)));
        bench.Subcommands.Add(epoch);

        var parallel = new Command("parallel", "Data-parallel training cost on this machine: step time, all-reduce time per step, how much of it the " +
            "backward pass hides, CPU time per image; --nproc N runs N ranks through mpirun (docs/benchmarks.md).")
        {
            Value("--model", "zoo model (default resnet20)", "NAME"),
            Value("--batch-size", "images per step and process (default 32)", "N"),
            Value("--image-size", "input height and width (default: the model's native size)", "S"),
            Value("--warmup", "untimed steps first (default 3)", "W"),
            Value("--steps", "timed steps (default 20)", "K"),
            Value("--threads", "CPU threads per process (0 = cores / processes on this machine)", "T"),
            Value("--bucket-mb", "gradient bucket size in MiB (default 25)", "MB"),
            Value("--nproc", "processes to start through mpirun (default 1: this one)", "N"),
        };
        parallel.SetAction(parse => ParallelBench.Run(CliApp.ToArgs(parse), parse.Tokens.Skip(2).Select(t => t.Value).ToList()));
        bench.Subcommands.Add(parallel);
        return bench;
    }

    private static void AddModelOptions(Command c, bool multipleModels)
    {
        c.Options.Add(multipleModels
            ? new Option<string[]>("--model") { Description = "zoo model; repeat for several, one row each (default resnet18)", HelpName = "NAME", Arity = ArgumentArity.OneOrMore }
            : Value("--model", "zoo model (resnet18, resnet50, resnet20, plain56, ...; see `residual models`; default resnet18)", "NAME"));
        c.Options.Add(Value("--batch-size", "images per step (bench: 16; compare: 16, --quick: 4)", "N"));
        c.Options.Add(Value("--image-size", "input height and width (default: the model's native size; compare: 224)", "S"));
        c.Options.Add(Value("--num-classes", "classes of the head (default: the model's)", "K"));
        c.Options.Add(Value("--device", "cpu, cuda or cuda:N (compare: cuda when present, else cpu)", "D"));
        c.Options.Add(Value("--mode", "train (forward + loss + backward + SGD step) or infer (forward, no grad)", "M"));
        c.Options.Add(Value("--warmup", "untimed steps first (bench: 2; compare: 1)", "W"));
        c.Options.Add(Value("--steps", "timed steps (bench: 10; compare: 5, --quick: 2)", "K"));
        c.Options.Add(Value("--threads", "CPU threads for ours and for PyTorch (0 = all cores; compare: all cores)", "T"));
        c.Options.Add(Value("--precision", "fp32 (strict), tf32 (PyTorch's default TF32 policy), bf16 or fp16 (autocast; fp16 with loss scaling); default fp32", "P"));
        c.Options.Add(Value("--format", "nchw (default) or nhwc (channels-last)", "F"));
        c.Options.Add(Flag("--channels-last", "channels-last (NHWC) model and inputs: the same as --format nhwc"));
        c.Options.Add(Value("--seed", "seed of the synthetic inputs and of the weights", "N"));
        c.Options.Add(Value("--lr", "SGD learning rate of the train step (default 0.01)", "LR"));
        c.Options.Add(Value("--json", "write the result(s) as JSON", "FILE"));
    }

    internal static Option<string> Value(string name, string help, string helpName) => new(name) { Description = help, HelpName = helpName };

    internal static Option<bool> Flag(string name, string help) => new(name) { Description = help };

    /// <summary>Runs the option-reading part of a command: an ArgumentException there is a usage error.</summary>
    internal static T Usage<T>(Func<T> read)
    {
        try { return read(); }
        catch (ArgumentException e) when (e is not UsageException) { throw new UsageException(e.Message, e); }
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
        var (cfg, json) = Usage(() =>
        {
            var defaults = verb == "infer" ? ModelDefaults with { Mode = BenchMode.Infer } : ModelDefaults;
            var c = BenchConfig.Parse(a, defaults);
            var j = a.String("json");
            a.RejectUnknown();
            ZooInfo.Of(c.Model); // an unknown name fails here, before anything is printed
            return (c, j);
        });
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
              {r.Model} {r.Mode} on {r.Device} ({r.DeviceName}), batch {r.BatchSize}, {r.ImageSize}x{r.ImageSize}, {r.Threads} threads, {r.Precision} {r.Format}{(r.Tf32 is { } tf ? $"; {tf}" : "")}
              ms/step: median {m.Median:F2} (min {m.Min:F2}, p10 {m.P10:F2}, p90 {m.P90:F2}, max {m.Max:F2}) over {r.Steps} steps{(r.CpuMsPerStep is { } cpu ? $"; CPU time {cpu:F0} ms/step" : "")}
              images/s: {r.ImagesPerSec:F1}   compute: {r.GflopPerImage:F3} GFLOP/img ({r.GflopNote}) = {tflops:F3} TFLOP/s
              parameters: {r.Parameters:N0}   peak memory: {CompareTable.Mb(r.PeakMemoryBytes)} MB ({r.PeakMemoryKind}){(r.PeakTensorBytes is { } t ? $"; live tensors peak {CompareTable.Mb(t)} MB" : "")}{(r.AllocatorReservedBytes is { } rb ? $"; reserved {CompareTable.Mb(rb)} MB" : "")}{(r.SystemTimeFraction is { } st ? $"; system time {st:P1} of CPU time" : "")}
            """);
    }

    private static int RunCompare(Args a)
    {
        bool quick = a.Flag("quick");
        var defaults = CompareDefaults(quick);
        var models = a.Strings("model").ToList();
        var (cfg, repeat, json, python) = Usage(() =>
        {
            var c = BenchConfig.Parse(a, defaults);
            var r = a.Int("repeat", 1, 1, 100);
            var j = a.String("json");
            var p = a.String("python");
            return (c, r, j, p);
        });
        bool inProcess = a.Flag("in-process");
        Usage(() => { a.RejectUnknown(); return 0; });
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
