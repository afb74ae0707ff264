// ONNX export checked by running it: ONNX Runtime (Microsoft.ML.OnnxRuntime) evaluates the
// exported graph and its logits must equal our eval-mode forward within 1e-4, for the zoo nets
// the issue names (resnet18, resnet50, resnet20, a pre-activation net, resnext50_32x4d) at small
// image sizes, and for small variants of every other family (plain, option-A and C shortcuts,
// SE, wide, pre-activation bottleneck, residual scaling). BN statistics are randomised so the
// BatchNormalization nodes matter. The batch dimension is symbolic: batches of 1 and 3 run on
// one session. Where Debian's python3-onnx is present, onnx.checker (full check, with shape
// inference) accepts the files too.
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using NUnit.Framework;
using ResidualEngine.Models;
using ResidualEngine.Nn;
using ResidualEngine.Training.Export;
using ResidualEngine.Training.Export.Proto;
using ModelMetadata = ResidualEngine.Models.ModelMetadata;

namespace ResidualEngine.Tests.Tools;

public class OnnxExportTests
{
    /// <summary>Non-trivial BN statistics and affine parameters, so a dropped or misplaced BN shows.</summary>
    internal static void Perturb(ResNet m, int seed)
    {
        var rng = new Random(seed);
        foreach (var (_, mod) in m.NamedModules())
        {
            if (mod is not BatchNorm2d bn) continue;
            int c = bn.NumFeatures;
            Set(bn.RunningMean, Enumerable.Range(0, c).Select(_ => rng.NextDouble() * 0.4 - 0.2));
            Set(bn.RunningVar, Enumerable.Range(0, c).Select(_ => 0.5 + rng.NextDouble()));
            Set(bn.Weight, Enumerable.Range(0, c).Select(_ => 0.4 + 0.6 * rng.NextDouble())); // below 1: logits stay at a trained net's scale
            Set(bn.Bias, Enumerable.Range(0, c).Select(_ => rng.NextDouble() * 0.4 - 0.2));
        }
    }

    private static void Set(Tensor t, IEnumerable<double> values)
    {
        using var scope = TensorScope.Begin();
        using var src = Tensor.FromDoubles(values.ToArray(), t.Shape, t.DType);
        t.Backend.Copy(t, src);
    }

    private static float[] Ours(ResNet m, float[] x, int n, int size)
    {
        using var scope = TensorScope.Begin();
        using var ng = ResidualEngine.Autograd.GradMode.NoGrad();
        m.Eval();
        return m.Forward(Tensor.FromArray(x, new Shape(n, 3, size, size))).ToFloats();
    }

    private static float[] Input(int n, int size, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n * 3 * size * size).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
    }

    internal static float[] RunOnnx(InferenceSession s, float[] x, int n, int size)
    {
        var input = new DenseTensor<float>(x, [n, 3, size, size]);
        using var results = s.Run([NamedOnnxValue.CreateFromTensor(OnnxExporter.InputName, input)]);
        return results.Single(r => r.Name == OnnxExporter.OutputName).AsEnumerable<float>().ToArray();
    }

    private static void Check(ResNet m, int size, string what)
    {
        Perturb(m, 17);
        var bytes = OnnxExporter.ToBytes(m, new OnnxExportOptions { ImageSize = size });
        using var opts = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL, IntraOpNumThreads = 2 };
        using var session = new InferenceSession(bytes, opts);
        foreach (int n in new[] { 1, 3 })
        {
            var x = Input(n, size, n);
            var ours = Ours(m, x, n, size);
            var theirs = RunOnnx(session, x, n, size);
            Assert.That(theirs, Has.Length.EqualTo(n * m.Config.NumClasses), $"{what}: batch {n}");
            double worst = ours.Zip(theirs, (a, b) => Math.Abs(a - b)).Max();
            TestContext.Out.WriteLine($"{what} batch {n}: max abs logit {ours.Select(Math.Abs).Max():G4}, largest difference {worst:G3}");
            Assert.That(worst, Is.LessThanOrEqualTo(1e-4), $"{what}: batch {n}, largest difference {worst:G3}");
            Assert.That(ours.Select(Math.Abs).Max(), Is.GreaterThan(1e-3), $"{what}: logits are not all zero");
        }
    }

    [TestCase("resnet18", 64)]
    [TestCase("resnet50", 64)]
    [TestCase("resnet20", 32)]
    [TestCase("preact_resnet18", 32)]
    [TestCase("resnext50_32x4d", 64)]
    public void OnnxRuntimeGivesOurLogits(string name, int size)
    {
        using var m = ModelZoo.Create(name, numClasses: 10, seed: 4);
        Check(m, size, name);
    }

    public static IEnumerable<TestCaseData> Families()
    {
        ResNetConfig Small(string zoo) => ModelZoo.Config(zoo) with { Layers = ModelZoo.Config(zoo).Stem == StemKind.Imagenet ? [1, 1, 1, 1] : [1, 1, 1], NumClasses = 7 };
        yield return new TestCaseData(Small("plain34"), 48).SetName("plain (ImageNet stem)");
        yield return new TestCaseData(Small("plain20"), 16).SetName("plain (CIFAR, no shortcut)");
        yield return new TestCaseData(Small("resnet20") with { Shortcut = ShortcutOption.C }, 16).SetName("shortcut C projections everywhere");
        yield return new TestCaseData(Small("se_resnet50"), 48).SetName("squeeze-and-excitation");
        yield return new TestCaseData(Small("wide_resnet50_2") with { Widths = [16, 32, 64, 128] }, 48).SetName("wide bottleneck");
        yield return new TestCaseData(Small("preact_resnet164"), 16).SetName("pre-activation bottleneck with projections");
        yield return new TestCaseData(Small("resnet18") with { ScaleResidual = true, DropPathRate = 0.2 }, 48).SetName("scaled residuals, drop-path off in eval");
        yield return new TestCaseData(Small("resnext50_32x4d") with { Widths = [32, 64, 128, 256] }, 40).SetName("grouped convolutions, odd size");
    }

    [TestCaseSource(nameof(Families))]
    public void EveryFamilyExportsFaithfully(ResNetConfig cfg, int size)
    {
        using var m = new ResNet(cfg, seed: 2);
        Check(m, size, cfg.Describe());
    }

    [Test]
    public void TheGraphDeclaresOpsetBatchAndMetadata()
    {
        using var m = ModelZoo.Create("resnet20", numClasses: 4);
        var meta = new ModelMetadata { Model = "resnet20", NumClasses = 4, Classes = ["a", "b", "c", "d"], ImageSize = 24 };
        var p = ModelProto.Parser.ParseFrom(OnnxExporter.ToBytes(m, new OnnxExportOptions { Metadata = meta, Opset = 15 }));
        Assert.That(p.OpsetImport.Single().Version, Is.EqualTo(15));
        Assert.That(p.IrVersion, Is.EqualTo(7));
        var dims = p.Graph.Input.Single().Type.TensorType.Shape.Dim;
        Assert.That(dims[0].DimParam, Is.EqualTo("batch"));
        Assert.That(dims.Skip(1).Select(d => d.DimValue), Is.EqualTo(new long[] { 3, 24, 24 }), "the metadata's input size");
        Assert.That(p.Graph.Output.Single().Type.TensorType.Shape.Dim[0].DimParam, Is.EqualTo("batch"));
        var props = p.MetadataProps.ToDictionary(e => e.Key, e => e.Value);
        Assert.That(props[ModelMetadata.ClassesKey], Is.EqualTo("[\"a\",\"b\",\"c\",\"d\"]"));
        Assert.That(p.Graph.Initializer.Select(i => i.Name), Does.Contain("layer2.0.conv1.weight"), "state-dict names");
        Assert.That(p.Graph.Node.Select(n => n.OpType).Distinct(), Is.SupersetOf(new[] { "Conv", "BatchNormalization", "Relu", "Add", "Slice", "Pad", "GlobalAveragePool", "Flatten", "Gemm" }));
        Assert.That(() => OnnxExporter.ToBytes(m, new OnnxExportOptions { Opset = 11 }), Throws.ArgumentException.With.Message.Contains("opset 11"));
    }

    private const string CheckerScript = """
        import sys
        try:
            import onnx
        except Exception as e:
            print(e); sys.exit(3)
        for path in sys.argv[1:]:
            m = onnx.load(path)
            onnx.checker.check_model(m, full_check=True)
            print("ok", path, m.opset_import[0].version)
        """;

    [Test]
    public void OnnxCheckerAcceptsTheExportsWherePythonOnnxIsPresent()
    {
        var dir = Directory.CreateTempSubdirectory("onnx-check-").FullName;
        try
        {
            var files = new List<string>();
            foreach (var (name, size) in new[] { ("resnet20", 32), ("preact_resnet18", 32), ("se_resnet50", 64) })
            {
                var cfg = ModelZoo.Config(name) with { Layers = name == "resnet20" ? [1, 1, 1] : [1, 1, 1, 1], NumClasses = 5 };
                using var m = new ResNet(cfg);
                var path = Path.Combine(dir, name + ".onnx");
                using (var f = File.Create(path)) OnnxExporter.Export(m, f, new OnnxExportOptions { ImageSize = size });
                files.Add(path);
                // Always: the file parses back and ONNX Runtime loads it.
                using var session = new InferenceSession(path);
                Assert.That(session.InputMetadata.Keys, Is.EqualTo(new[] { OnnxExporter.InputName }));
            }
            var output = PythonTorch.Run(CheckerScript, [.. files]);
            if (output is null) TestContext.Out.WriteLine("python3-onnx is not present: onnx.checker not run");
            else Assert.That(output.Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(files.Count).And.All.StartsWith("ok "));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
