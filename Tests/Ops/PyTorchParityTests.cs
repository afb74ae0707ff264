// Parity with PyTorch: each op's forward output and gradients (of loss = sum(y * r)) against
// values torch 1.13 computed in float32 (Tests/Fixtures/ops, written by
// Tools/reference/make_fixtures.py, whose header lists every case's keys). Our F32 path is compared
// with atol 1e-4 / rtol 1e-3 (different summation orders); the SGD updates, being plain
// elementwise arithmetic, much more tightly so that a missing weight-decay term (1e-5) shows.
// A missing implementation fails its tests.
using System.Globalization;
using NUnit.Framework;
using ResidualEngine.Nn.Optim;
using ResidualEngine.Serialization;

// Not "ResidualEngine.Tests.Ops": that namespace would hide the Ops class from every ResidualEngine.Tests.* namespace.
namespace ResidualEngine.Tests.OpsParity;

public class PyTorchParityTests
{
    private const double Atol = 1e-4, Rtol = 1e-3;

    private static SafeTensorsFile Load(string fixture) =>
        SafeTensors.Load(Path.Combine(TestContext.CurrentContext.TestDirectory, "Fixtures", "ops", fixture + ".safetensors"));

    /// <summary>A scope-owned copy of a fixture tensor, optionally a leaf that requires grad.</summary>
    private static Tensor In(SafeTensorsFile f, string key, bool grad = false)
    {
        var t = f[key].To(f[key].DType);
        if (grad) t.RequiresGrad = true;
        return t;
    }

    private static int Int(SafeTensorsFile f, string key) => int.Parse(f.Metadata[key], CultureInfo.InvariantCulture);
    private static double Real(SafeTensorsFile f, string key) => double.Parse(f.Metadata[key], CultureInfo.InvariantCulture);
    private static bool Flag(SafeTensorsFile f, string key) => f.Metadata[key] == "true";

    /// <summary>Backward of sum(y * r).</summary>
    private static void BackwardWithR(Tensor y, Tensor r) => Ops.Sum(Ops.Mul(y, r)).Backward();

    private static void Same(Tensor? actual, SafeTensorsFile f, string key, string what, double atol = Atol, double rtol = Rtol)
    {
        Assert.That(actual, Is.Not.Null, $"{what}: {key} is missing (no gradient?)");
        Close.Assert(actual!, f[key], atol, rtol, $"{what}: {key}");
    }

    [TestCase("conv2d_3x3_pad1")]
    [TestCase("conv2d_stride2")]
    [TestCase("conv2d_dilation2")]
    [TestCase("conv2d_groups2")]
    [TestCase("conv2d_depthwise")]
    [TestCase("conv2d_1x1_stride2_nobias")]
    [TestCase("conv2d_7x7_stride2_pad3")]
    public void Conv2d(string fixture) =>
        WithWeights(fixture, (x, w, b, f) => Ops.Conv2d(x, w, b, stride: Int(f, "stride"), padding: Int(f, "padding"),
            dilation: Int(f, "dilation"), groups: Int(f, "groups")));

    [TestCase("batchnorm2d_train")]
    [TestCase("batchnorm2d_eval")]
    public void BatchNorm2d(string fixture)
    {
        using var scope = TensorScope.Begin();
        using var f = Load(fixture);
        var x = In(f, "x", true);
        var gamma = In(f, "gamma", true);
        var beta = In(f, "beta", true);
        var rm = In(f, "running_mean");
        var rv = In(f, "running_var");
        var y = Ops.BatchNorm2d(x, gamma, beta, rm, rv, Flag(f, "training"),
            momentum: Real(f, "momentum"), eps: Real(f, "eps"));
        Same(y, f, "y", fixture);
        Same(rm, f, "running_mean_after", fixture);
        Same(rv, f, "running_var_after", fixture);
        BackwardWithR(y, In(f, "r"));
        Same(x.Grad, f, "dx", fixture);
        Same(gamma.Grad, f, "dgamma", fixture);
        Same(beta.Grad, f, "dbeta", fixture);
    }

    [Test]
    public void Relu() => Unary("relu", x => Ops.Relu(x));

    [Test]
    public void Silu() => Unary("silu", x => Ops.Silu(x));

    [Test]
    public void Add()
    {
        using var scope = TensorScope.Begin();
        using var f = Load("add");
        var a = In(f, "a", true);
        var b = In(f, "b", true);
        var y = Ops.Add(a, b);
        Same(y, f, "y", "add");
        BackwardWithR(y, In(f, "r"));
        Same(a.Grad, f, "da", "add");
        Same(b.Grad, f, "db", "add");
    }

    [TestCase("maxpool2d_3x3_s2_p1")]
    [TestCase("maxpool2d_ceil")]
    [TestCase("maxpool2d_ceil_pad")]
    public void MaxPool2d(string fixture) =>
        Unary(fixture, (x, f) => Ops.MaxPool2d(x, Int(f, "kernel"), Int(f, "stride"), Int(f, "padding"), Flag(f, "ceil_mode")));

    [TestCase("avgpool2d_include_pad")]
    [TestCase("avgpool2d_exclude_pad")]
    [TestCase("avgpool2d_ceil_include_pad")]
    [TestCase("avgpool2d_ceil_exclude_pad")]
    public void AvgPool2d(string fixture) =>
        Unary(fixture, (x, f) => Ops.AvgPool2d(x, Int(f, "kernel"), Int(f, "stride"), Int(f, "padding"),
            Flag(f, "ceil_mode"), Flag(f, "count_include_pad")));

    [Test]
    public void GlobalAvgPool2d() => Unary("global_avgpool", x => Ops.GlobalAvgPool2d(x));

    [Test]
    public void Flatten() => Unary("flatten", (x, f) => Ops.Flatten(x, Int(f, "start_dim")));

    [Test]
    public void ShortcutA() => Unary("shortcut_a", (x, f) => Ops.ShortcutA(x, Int(f, "out_channels"), Int(f, "stride")));

    [TestCase("linear")]
    [TestCase("linear_nobias")]
    public void Linear(string fixture) => WithWeights(fixture, (x, w, b, _) => Ops.Linear(x, w, b));

    [TestCase("cross_entropy_mean")]
    [TestCase("cross_entropy_smooth01")]
    public void SoftmaxCrossEntropy(string fixture)
    {
        using var scope = TensorScope.Begin();
        using var f = Load(fixture);
        var logits = In(f, "logits", true);
        var labels = In(f, "labels");
        var loss = Ops.SoftmaxCrossEntropy(logits, labels, Real(f, "label_smoothing"));
        Same(loss, f, "loss", fixture);
        loss.Backward();
        Same(logits.Grad, f, "dlogits", fixture);
    }

    [TestCase("sgd_momentum")]
    [TestCase("sgd_nesterov")]
    [TestCase("sgd_dampening")]
    public void SgdSteps(string fixture)
    {
        using var scope = TensorScope.Begin();
        using var f = Load(fixture);
        var ps = new List<Tensor>();
        for (int j = 0; f.Tensors.ContainsKey($"p{j}"); j++) ps.Add(In(f, $"p{j}", true));
        Assert.That(ps, Has.Count.GreaterThan(1), "fixture parameters");
        using var opt = new Sgd(new[] { new ParamGroup(ps, Real(f, "weight_decay")) }, Real(f, "lr"),
            Real(f, "momentum"), Real(f, "dampening"), Flag(f, "nesterov"));
        for (int s = 1; s <= Int(f, "steps"); s++)
        {
            for (int j = 0; j < ps.Count; j++)
            {
                ps[j].Grad?.Dispose();
                ps[j].Grad = TensorScope.Detach(In(f, $"grad{s}.p{j}"));
            }
            opt.Step();
            for (int j = 0; j < ps.Count; j++)
                Same(ps[j], f, $"step{s}.p{j}", fixture, atol: 1e-6, rtol: 1e-6);
        }
    }

    /// <summary>x, w and (when the fixture says "bias") b through <paramref name="op"/>: y and every gradient against torch's.</summary>
    private static void WithWeights(string fixture, Func<Tensor, Tensor, Tensor?, SafeTensorsFile, Tensor> op)
    {
        using var scope = TensorScope.Begin();
        using var f = Load(fixture);
        bool bias = Flag(f, "bias");
        var x = In(f, "x", true);
        var w = In(f, "w", true);
        var b = bias ? In(f, "b", true) : null;
        var y = op(x, w, b, f);
        Same(y, f, "y", fixture);
        BackwardWithR(y, In(f, "r"));
        Same(x.Grad, f, "dx", fixture);
        Same(w.Grad, f, "dw", fixture);
        if (bias) Same(b!.Grad, f, "db", fixture);
    }

    private static void Unary(string fixture, Func<Tensor, Tensor> op) => Unary(fixture, (x, _) => op(x));

    private static void Unary(string fixture, Func<Tensor, SafeTensorsFile, Tensor> op)
    {
        using var scope = TensorScope.Begin();
        using var f = Load(fixture);
        var x = In(f, "x", true);
        var y = op(x, f);
        Same(y, f, "y", fixture);
        BackwardWithR(y, In(f, "r"));
        Same(x.Grad, f, "dx", fixture);
    }
}
