// `residual experiment gradients`: how signals travel through deep plain and residual nets. For each
// model, at initialisation and after K training steps, one probe batch is run through the network
// block by block (stem, each residual/plain block, head: the same computation as ResNet.Forward,
// checked against it), recording the standard deviation of every block's output; the backward pass
// of the same batch then gives the gradient norm of every block's parameters (and of every conv
// layer, in a second CSV). One figure with two log-scale panels, plus CSVs, go into --out.
using System.Globalization;
using ResidualEngine.Autograd;
using ResidualEngine.Models;
using ResidualEngine.Nn;
using ResidualEngine.Nn.Optim;
using ResidualEngine.Tools.Bench;
using ResidualEngine.Tools.Cli;
using ResidualEngine.Training;
using ResidualEngine.Training.Plotting;

namespace ResidualEngine.Tools.Experiments;

public sealed record GradientsOptions
{
    public IReadOnlyList<string> Models { get; init; } = ["plain56", "resnet56"];
    public int Steps { get; init; } = 50;
    public int BatchSize { get; init; } = 32;
    public double LearningRate { get; init; } = 0.1;
    public int Seed { get; init; }
    public DataSpec Data { get; init; } = new();
    public string Out { get; init; } = Path.Combine("docs", "experiments", "gradients");
    public int Threads { get; init; }
    public Device Device { get; init; } = Device.Cpu;

    public const string Usage = """
        usage: residual experiment gradients [--model NAME ...] [options]
          per-block gradient norms and activation standard deviations at initialisation and after K steps
          --model NAME          a zoo model; repeat for several (default: plain56 and resnet56)
          --steps K             training steps between the two measurements (50)
          --batch-size B        (32)   --lr LR (0.1)   --seed N (0)
          --data DIR            an ImageFolder (as the degradation experiment; default: synthetic images)
          --classes K --train-per-class N --val-per-class M --image-size S --augment A   (as degradation)
          --device D   --threads T   --workers W
          --out DIR             where the figure and CSVs go (docs/experiments/gradients)
        """;

    public static GradientsOptions Parse(Args a)
    {
        ArgumentNullException.ThrowIfNull(a);
        var d = new GradientsOptions();
        var models = a.Strings("model").Select(ModelZoo.Canonical).ToList();
        return d with
        {
            Models = models.Count > 0 ? models : d.Models,
            Steps = a.Int("steps", d.Steps, 0, 10_000_000),
            BatchSize = a.Int("batch-size", d.BatchSize, 2, 65536),
            LearningRate = a.Double("lr", d.LearningRate, 1e-6, 10),
            Seed = a.Int("seed", d.Seed),
            Data = DataSpec.Parse(a, d.Data),
            Out = a.String("out") ?? d.Out,
            Threads = a.Int("threads", 0, 0, 1024),
            Device = a.String("device") is { } dev ? Device.Parse(dev) : Device.Cpu,
        };
    }
}

/// <summary>One block's measurement: index from the input (1-based), name, parameter-gradient norm, output std.</summary>
public sealed record BlockStat(int Index, string Block, double GradNorm, double ActivationStd);

public sealed record LayerGrad(string Layer, double GradNorm);

public static class GradientsExperiment
{
    public sealed record Measurement(string Model, int Step, IReadOnlyList<BlockStat> Blocks, IReadOnlyList<LayerGrad> Layers, double Loss);

    public sealed record Result(IReadOnlyList<Measurement> Measurements, string Figure, string Csv, string LayersCsv);

    public static Result Run(GradientsOptions o, string commandLine, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(o);
        using var threadScope = ThreadControl.Apply(o.Threads);
        int threads = threadScope.Threads;
        var data = ExperimentData.Open(o.Data, log);
        log?.Invoke($"data: {o.Data.Describe()}; {threads} threads");
        var all = new List<Measurement>();
        foreach (var name in o.Models)
        {
            using var model = ModelZoo.Create(name, data.NumClasses, o.Seed);
            model.To(o.Device);
            using var probeLoader = data.ValLoader(o.BatchSize);
            using var probe = probeLoader.Epoch(0).First();
            using var x = probe.Images.To(o.Device);
            using var y = probe.Labels.To(o.Device);
            CheckWalk(model, x);
            all.Add(Measure(name, model, x, y, 0));
            log?.Invoke(Line(all[^1]));
            if (o.Steps > 0)
            {
                TrainSteps(model, data, o);
                all.Add(Measure(name, model, x, y, o.Steps));
                log?.Invoke(Line(all[^1]));
            }
        }
        Directory.CreateDirectory(o.Out);
        var figure = Path.Combine(o.Out, "gradients.png");
        LineChart.Save(figure,
        [
            new Panel("gradient norm of each block's parameters", "block (input to output)", "||dL/dW|| per block",
                all.Select(m => new Series(Label(m), m.Blocks.Select(b => ((double)b.Index, b.GradNorm)).ToList())).ToList(), LogY: true),
            new Panel("standard deviation of each block's output", "block (input to output)", "std of activations",
                all.Select(m => new Series(Label(m), m.Blocks.Select(b => ((double)b.Index, b.ActivationStd)).ToList())).ToList(), LogY: true),
        ]);
        var csv = Path.Combine(o.Out, "gradients.csv");
        ResultFiles.Write(csv, ResultFiles.Csv(["model", "step", "block_index", "block", "grad_norm", "activation_std", "probe_loss"],
            all.SelectMany(m => m.Blocks.Select(b => (IReadOnlyList<object?>)[m.Model, m.Step, b.Index, b.Block, b.GradNorm, b.ActivationStd, m.Loss]))));
        var layers = Path.Combine(o.Out, "gradients_layers.csv");
        ResultFiles.Write(layers, ResultFiles.Csv(["model", "step", "layer", "grad_norm"],
            all.SelectMany(m => m.Layers.Select(l => (IReadOnlyList<object?>)[m.Model, m.Step, l.Layer, l.GradNorm]))));
        ResultFiles.Write(Path.Combine(o.Out, "command.txt"), string.Create(CultureInfo.InvariantCulture,
            $"{commandLine}\n\ndata: {o.Data.Describe()}\nbatch {o.BatchSize}, lr {o.LearningRate}, seed {o.Seed}, steps {o.Steps}\nmachine: {MachineInfo.Describe()}, {threads} threads\n"));
        log?.Invoke($"wrote {figure}, {csv}, {layers}");
        return new Result(all, figure, csv, layers);
    }

    private static string Label(Measurement m) => m.Step == 0 ? $"{m.Model} at init" : $"{m.Model} after {m.Step} steps";

    private static string Line(Measurement m) => string.Create(CultureInfo.InvariantCulture,
        $"  {Label(m)}: loss {m.Loss:F3}; grad norm first/last block {m.Blocks[0].GradNorm:G3}/{m.Blocks[^1].GradNorm:G3}; " +
        $"activation std first/last {m.Blocks[0].ActivationStd:G3}/{m.Blocks[^1].ActivationStd:G3}");

    /// <summary>The forward pass as ResNet.Forward does it, block by block, calling <paramref name="onBlock"/> after each block.</summary>
    public static Tensor Walk(ResNet model, Tensor x, Action<int, Tensor>? onBlock)
    {
        ArgumentNullException.ThrowIfNull(model);
        var y = model.Conv1.Forward(x);
        if (model.Bn1 is not null) y = Ops.Relu(model.Bn1.Forward(y));
        if (model.Config.Stem == StemKind.Imagenet) y = Ops.MaxPool2d(y, 3, 2, 1);
        int i = 0;
        foreach (var block in model.Blocks)
        {
            y = block.Forward(y);
            onBlock?.Invoke(i++, y);
        }
        if (model.BnFinal is not null) y = Ops.Relu(model.BnFinal.Forward(y));
        return model.Fc.Forward(Ops.Flatten(Ops.GlobalAvgPool2d(y), 1));
    }

    /// <summary>Throws when the block walk does not reproduce the model's own forward (in eval mode, which has no side effects).</summary>
    public static void CheckWalk(ResNet model, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var scope = TensorScope.Begin();
        using var noGrad = GradMode.NoGrad();
        bool training = model.Training;
        model.Eval();
        try
        {
            var a = model.Forward(x).ToDoubles();
            var b = Walk(model, x, null).ToDoubles();
            double maxDiff = a.Zip(b, (p, q) => Math.Abs(p - q)).Max();
            if (!(maxDiff <= 1e-4 * (1 + a.Max(Math.Abs))))
                throw new InvalidOperationException($"the block-by-block walk of {model.Config.Name} differs from its Forward by {maxDiff:G3}; " +
                    "ResNet.Forward changed and GradientsExperiment.Walk must follow it");
        }
        finally
        {
            model.Train(training);
        }
    }

    /// <summary>One forward (train mode, block by block) and backward on the probe batch; leaves no gradients behind.</summary>
    public static Measurement Measure(string name, ResNet model, Tensor x, Tensor y, int step)
    {
        ArgumentNullException.ThrowIfNull(model);
        var blocks = model.Blocks.ToList();
        var names = model.NamedModules().Where(m => m.Module is ResidualBlock).Select(m => m.Name).ToList();
        var stds = new double[blocks.Count];
        double loss;
        model.Train();
        model.ZeroGrad();
        using (TensorScope.Begin())
        {
            var logits = Walk(model, x, (i, t) => stds[i] = Std(t));
            var l = Ops.SoftmaxCrossEntropy(logits, y);
            loss = l.Item();
            l.Backward();
        }
        var stats = new List<BlockStat>();
        var layers = new List<LayerGrad>();
        for (int i = 0; i < blocks.Count; i++)
        {
            double sq = blocks[i].Parameters().Sum(p => SumSquares(p.Grad));
            stats.Add(new BlockStat(i + 1, names[i], Math.Sqrt(sq), stds[i]));
        }
        foreach (var (n, m) in model.NamedModules())
            if (m is Conv2d conv) layers.Add(new LayerGrad(n, Math.Sqrt(SumSquares(conv.Weight.Grad))));
        model.ZeroGrad();
        return new Measurement(name, step, stats, layers, loss);
    }

    private static void TrainSteps(ResNet model, ExperimentData data, GradientsOptions o)
    {
        using var loader = data.TrainLoader(o.BatchSize, o.Seed);
        using var sgd = Sgd.ForModule(model, o.LearningRate, Schedule.Momentum, Schedule.WeightDecay);
        var trainingStep = new TrainingStep(model, sgd);
        int step = 0;
        for (int epoch = 0; step < o.Steps; epoch++)
        {
            foreach (var batch in loader.Epoch(epoch))
            {
                using (batch)
                using (TensorScope.Begin())
                    trainingStep.Run(batch);
                if (++step >= o.Steps) break;
            }
        }
        model.ZeroGrad();
    }

    private static double Std(Tensor t)
    {
        var v = t.ToDoubles();
        double mean = v.Average();
        return Math.Sqrt(v.Sum(a => (a - mean) * (a - mean)) / Math.Max(1, v.Length - 1));
    }

    private static double SumSquares(Tensor? g)
    {
        if (g is null) return 0;
        double s = 0;
        foreach (var a in g.ToDoubles()) s += a * a;
        return s;
    }
}
