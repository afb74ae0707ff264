// ONNX export of any zoo network (plain, basic, bottleneck, pre-activation, option-A shortcuts,
// ResNeXt groups, SE, wide, residual scaling) for inference: walks the Module tree — stem,
// blocks, head — and writes each layer as the ONNX operator with the same meaning (Conv,
// BatchNormalization with the running statistics, Relu, MaxPool, Add, GlobalAveragePool,
// Flatten, Gemm, Sigmoid and Mul for SE, Slice + Pad for option-A shortcuts). It reads only the
// modules' parameters and public structure, never the autograd graph. The batch dimension is
// symbolic ("batch"); height and width are the size the net was trained at. Initializers keep
// the state-dict names; the model's metadata (classes, input size, normalisation) goes into
// metadata_props. Any block member the exporter does not know is an error, not a silent skip.
using Google.Protobuf;
using ResidualEngine.Models;
using ResidualEngine.Nn;
using ResidualEngine.Training.Export.Proto;

namespace ResidualEngine.Training.Export;

public sealed record OnnxExportOptions
{
    /// <summary>ONNX operator set; 13 (the default) to 17 give the same graph.</summary>
    public int Opset { get; init; } = 13;
    /// <summary>Input height and width; 0 = the metadata's size, else the model's native size.</summary>
    public int ImageSize { get; init; }
    /// <summary>Written into the model's metadata_props (class names, normalisation) when given.</summary>
    public ModelMetadata? Metadata { get; init; }
}

public static class OnnxExporter
{
    public const int MinOpset = 13, MaxOpset = 17;
    public const string InputName = "input", OutputName = "logits";

    /// <summary>Writes <paramref name="model"/> as an ONNX model to <paramref name="output"/>.</summary>
    public static void Export(ResNet model, Stream output, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        Build(model, options ?? new OnnxExportOptions()).WriteTo(output);
    }

    /// <summary>The ONNX model as bytes.</summary>
    public static byte[] ToBytes(ResNet model, OnnxExportOptions? options = null) => Build(model, options ?? new OnnxExportOptions()).ToByteArray();

    internal static ModelProto Build(ResNet model, OnnxExportOptions o)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(o);
        if (o.Opset is < MinOpset or > MaxOpset) throw new ArgumentException($"ONNX export: opset {o.Opset} is not supported (use {MinOpset} to {MaxOpset})");
        int size = o.ImageSize > 0 ? o.ImageSize : o.Metadata?.ImageSize > 0 ? o.Metadata.ImageSize : model.NativeImageSize;
        if (size < 8) throw new ArgumentException($"ONNX export: image size {size} is too small");

        var g = new OnnxGraph();
        g.Graph.Name = model.Config.Name;
        g.Fresh(InputName);
        g.Fresh(OutputName);
        g.Graph.Input.Add(OnnxGraph.Value(InputName, "batch", 3, size, size));
        new Walker(g).Network(model, InputName);
        g.Graph.Node[^1].Output[0] = OutputName; // the classifier's output is the graph's
        g.Graph.Output.Add(OnnxGraph.Value(OutputName, "batch", model.Config.NumClasses));

        var m = new ModelProto
        {
            IrVersion = 7,
            ProducerName = "ResidualEngine",
            ProducerVersion = typeof(OnnxExporter).Assembly.GetName().Version?.ToString() ?? "0",
            Graph = g.Graph,
            DocString = $"{model.Config.Describe()}; input (batch, 3, {size}, {size}) normalised per channel, output logits (batch, {model.Config.NumClasses})",
        };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = o.Opset });
        if (o.Metadata is { } meta)
            foreach (var (k, v) in meta.ToDictionary().Where(kv => kv.Key != "format"))
                m.MetadataProps.Add(new StringStringEntryProto { Key = k, Value = v });
        return m;
    }

    private sealed class Walker(OnnxGraph g)
    {
        public string Network(ResNet net, string x)
        {
            var known = new HashSet<string>(StringComparer.Ordinal) { "conv1", "bn1", "bn_final", "fc" };
            foreach (var (name, _) in net.Children())
                if (!known.Contains(name) && !name.StartsWith("layer", StringComparison.Ordinal)) Unknown(net.Config.Name, name);
            var y = Conv("conv1", net.Conv1, x);
            if (net.Bn1 is not null) y = Relu("relu", Bn("bn1", net.Bn1, y));
            if (net.Config.Stem == StemKind.Imagenet)
                y = g.Node("MaxPool", "maxpool", [y], OnnxGraph.IntsAttr("kernel_shape", 3, 3), OnnxGraph.IntsAttr("strides", 2, 2), OnnxGraph.IntsAttr("pads", 1, 1, 1, 1));
            for (int s = 0; s < net.Stages.Count; s++)
                for (int b = 0; b < net.Stages[s].Count; b++)
                {
                    var block = net.Stages[s][b] as ResidualBlock
                        ?? throw new NotSupportedException($"ONNX export: layer{s + 1}.{b} is a {net.Stages[s][b].GetType().Name}, not a residual block");
                    y = Block($"layer{s + 1}.{b}", block, y);
                }
            if (net.BnFinal is not null) y = Relu("relu_final", Bn("bn_final", net.BnFinal, y));
            y = g.Node("GlobalAveragePool", "avgpool", [y]);
            y = g.Node("Flatten", "flatten", [y], OnnxGraph.IntAttr("axis", 1));
            var fc = net.Fc;
            var inputs = new List<string> { y, g.Weight("fc.weight", fc.Weight) };
            if (fc.Bias is { } bias) inputs.Add(g.Weight("fc.bias", bias));
            return g.Node("Gemm", "fc", inputs, OnnxGraph.IntAttr("transB", 1));
        }

        private static void Unknown(string owner, string member) =>
            throw new NotSupportedException($"ONNX export: {owner} has a member '{member}' that the exporter does not know; it would be left out of the graph");

        private string Block(string name, ResidualBlock blk, string x)
        {
            string[] members = blk switch
            {
                BasicBlock => ["conv1", "bn1", "conv2", "bn2"],
                Bottleneck or PreActBottleneck => ["conv1", "bn1", "conv2", "bn2", "conv3", "bn3"],
                PreActBasicBlock => ["bn1", "conv1", "bn2", "conv2"],
                _ => throw new NotSupportedException($"ONNX export: block {name} is a {blk.GetType().Name}, which the exporter does not know"),
            };
            foreach (var (child, _) in blk.Children())
                if (!members.Contains(child) && child is not ("se" or "downsample")) Unknown(name, child);
            string y, pre = x;
            switch (blk)
            {
                case BasicBlock b:
                    y = Relu($"{name}.relu1", Bn($"{name}.bn1", b.Bn1, Conv($"{name}.conv1", b.Conv1, x)));
                    y = Bn($"{name}.bn2", b.Bn2, Conv($"{name}.conv2", b.Conv2, y));
                    break;
                case Bottleneck b:
                    y = Relu($"{name}.relu1", Bn($"{name}.bn1", b.Bn1, Conv($"{name}.conv1", b.Conv1, x)));
                    y = Relu($"{name}.relu2", Bn($"{name}.bn2", b.Bn2, Conv($"{name}.conv2", b.Conv2, y)));
                    y = Bn($"{name}.bn3", b.Bn3, Conv($"{name}.conv3", b.Conv3, y));
                    break;
                case PreActBasicBlock b:
                    pre = Relu($"{name}.relu1", Bn($"{name}.bn1", b.Bn1, x));
                    y = Conv($"{name}.conv1", b.Conv1, pre);
                    y = Conv($"{name}.conv2", b.Conv2, Relu($"{name}.relu2", Bn($"{name}.bn2", b.Bn2, y)));
                    break;
                case PreActBottleneck b:
                    pre = Relu($"{name}.relu1", Bn($"{name}.bn1", b.Bn1, x));
                    y = Conv($"{name}.conv1", b.Conv1, pre);
                    y = Conv($"{name}.conv2", b.Conv2, Relu($"{name}.relu2", Bn($"{name}.bn2", b.Bn2, y)));
                    y = Conv($"{name}.conv3", b.Conv3, Relu($"{name}.relu3", Bn($"{name}.bn3", b.Bn3, y)));
                    break;
                default:
                    throw new NotSupportedException($"ONNX export: block {name} is a {blk.GetType().Name}");
            }
            return Merge(name, blk, y, x, pre);
        }

        /// <summary>As ResidualBlock.Merge in eval mode (drop-path is the identity there).</summary>
        private string Merge(string name, ResidualBlock blk, string branch, string x, string pre)
        {
            var kids = blk.Children().ToDictionary(c => c.Name, c => c.Module, StringComparer.Ordinal);
            if (kids.TryGetValue("se", out var se)) branch = Se($"{name}.se", (SqueezeExcitation)se, branch);
            if (blk.Plain) return blk.PreActivation ? branch : Relu($"{name}.relu", branch);
            if (blk.Args.ResidualScale != 1.0)
                branch = g.Node("Mul", $"{name}.scale", [branch, g.Scalar($"{name}.residual_scale", (float)blk.Args.ResidualScale)]);
            string sc = blk.Shortcut switch
            {
                ResidualBlock.ShortcutKind.Identity => x,
                ResidualBlock.ShortcutKind.ZeroPad => ZeroPad($"{name}.shortcut", x, blk.InChannels, blk.OutChannels, blk.Stride),
                ResidualBlock.ShortcutKind.Projection => Projection($"{name}.downsample", (Sequential)kids["downsample"], blk.PreActivation ? pre : x),
                _ => throw new NotSupportedException($"ONNX export: block {name} has shortcut {blk.Shortcut}"),
            };
            var sum = g.Node("Add", $"{name}.add", [branch, sc]);
            return blk.PreActivation ? sum : Relu($"{name}.relu", sum);
        }

        private string Projection(string name, Sequential seq, string x)
        {
            for (int i = 0; i < seq.Count; i++)
                x = seq[i] switch
                {
                    Conv2d c => Conv($"{name}.{i}", c, x),
                    BatchNorm2d b => Bn($"{name}.{i}", b, x),
                    var m => throw new NotSupportedException($"ONNX export: {name}.{i} is a {m.GetType().Name}"),
                };
            return x;
        }

        /// <summary>Option A: every stride-th pixel, then (out - in) / 2 zero channels on each side.</summary>
        private string ZeroPad(string name, string x, int inChannels, int outChannels, int stride)
        {
            var y = x;
            if (stride != 1)
                y = g.Node("Slice", $"{name}.subsample", [y, g.Ints($"{name}.starts", 0, 0), g.Ints($"{name}.ends", long.MaxValue, long.MaxValue),
                    g.Ints($"{name}.axes", 2, 3), g.Ints($"{name}.steps", stride, stride)]);
            int pad = (outChannels - inChannels) / 2;
            return pad == 0 ? y : g.Node("Pad", $"{name}.pad", [y, g.Ints($"{name}.pads", 0, pad, 0, 0, 0, pad, 0, 0)]);
        }

        private string Se(string name, SqueezeExcitation se, string x)
        {
            var s = g.Node("GlobalAveragePool", $"{name}.pool", [x]);
            s = Relu($"{name}.relu", Conv($"{name}.fc1", se.Fc1, s));
            s = g.Node("Sigmoid", $"{name}.gate", [Conv($"{name}.fc2", se.Fc2, s)]);
            return g.Node("Mul", $"{name}.scale", [x, s]);
        }

        private string Conv(string name, Conv2d c, string x)
        {
            var inputs = new List<string> { x, g.Weight(name + ".weight", c.Weight) };
            if (c.Bias is { } bias) inputs.Add(g.Weight(name + ".bias", bias));
            var p = c.Params;
            return g.Node("Conv", name, inputs,
                OnnxGraph.IntsAttr("kernel_shape", c.Weight.Shape[2], c.Weight.Shape[3]),
                OnnxGraph.IntsAttr("strides", p.StrideH, p.StrideW),
                OnnxGraph.IntsAttr("pads", p.PadH, p.PadW, p.PadH, p.PadW),
                OnnxGraph.IntsAttr("dilations", p.DilationH, p.DilationW),
                OnnxGraph.IntAttr("group", p.Groups));
        }

        private string Bn(string name, BatchNorm2d b, string x) =>
            g.Node("BatchNormalization", name,
                [x, g.Weight(name + ".weight", b.Weight), g.Weight(name + ".bias", b.Bias), g.Weight(name + ".running_mean", b.RunningMean), g.Weight(name + ".running_var", b.RunningVar)],
                OnnxGraph.FloatAttr("epsilon", (float)b.Eps), OnnxGraph.FloatAttr("momentum", (float)(1 - b.Momentum)));

        private string Relu(string name, string x) => g.Node("Relu", name, [x]);
    }
}
