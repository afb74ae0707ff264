// BF16 autocast against PyTorch 1.13's CPU autocast (Tests/Fixtures/amp, written by
// Tools/reference/make_amp_fixtures.py): each op's output dtype and values and the gradients of its
// inputs, and a CIFAR ResNet-20 forward/backward, under `using (Autocast.Begin(DType.BF16))`.
// Tolerances, and why:
//  - Ops that round one F32 (or double) computation once into BF16 (pointwise, pooling, batch norm,
//    the loss): BF16 keeps 8 significant bits, so neighbouring values are at most 2^-7 apart relative
//    to the smaller; both engines round from the same inputs, so they agree to one neighbour:
//    rtol 2^-7, plus 2^-9 of the output's largest magnitude for values that cancel towards zero.
//  - Matrix products (convolution, linear: outputs and all gradients): ours accumulate in F32 and
//    round once; PyTorch 1.13's CPU BF16 GEMM on this machine does not (it rounds partial sums: for
//    linear's dW it is 3.7 BF16 steps from the exact value where ours is within one), so element
//    tolerances would only measure PyTorch's error. The fixtures carry the same op in F32, and each
//    result is measured against it in the L2 norm: ours must be as close to F32 as PyTorch's BF16
//    (within one BF16 rounding, 2^-8 of the norm), and within twice PyTorch's own distance of it.
//  - The whole network compounds one BF16 rounding per layer, in a different pattern in each engine,
//    so the two BF16 results scatter around the F32 one, on either side. What is held is accuracy,
//    against the F32 run in the fixture: the logits (L2 norm) and the loss with |ours - F32| <= 2
//    |torch - F32| + 2^-8 |F32|; the gradients through their sums of squares, which for this tiny
//    randomly initialised network and 2 images deviate by up to 25% from F32 in both engines (BN
//    parameters most): the root mean square over all parameters of our relative deviation must be
//    at most 1.5 times PyTorch's, and no parameter's may exceed 35%. (The plain sums of the gradients
//    cancel to near zero and scatter by their own size in both engines; they are not compared.)
using System.Globalization;
using NUnit.Framework;
using ResidualEngine.Models;
using ResidualEngine.Nn;
using ResidualEngine.Serialization;
using ResidualEngine.Tests.Models;

namespace ResidualEngine.Tests.OpTests;

public class AutocastParityTests
{
    private const double Rtol = 1.0 / 128, AbsShare = 1.0 / 512; // one BF16 neighbour; 2^-9 of the largest magnitude

    private static SafeTensorsFile Load(string name)
    {
        var path = Path.Combine(TestContext.CurrentContext.TestDirectory, "Fixtures", "amp", name + ".safetensors");
        if (!File.Exists(path)) Assert.Fail($"fixture {name} is missing: run /usr/bin/python3 Tools/reference/make_amp_fixtures.py and commit Tests/Fixtures/amp");
        return SafeTensors.Load(path);
    }

    private static Tensor In(SafeTensorsFile f, string key, bool grad = false)
    {
        var t = f[key].To(f[key].DType);
        if (grad) t.RequiresGrad = true;
        return t;
    }

    /// <summary>Same dtype as torch's, values within one BF16 neighbour (see the file comment).</summary>
    private static void Same(Tensor? actual, SafeTensorsFile f, string key, string what)
    {
        Assert.That(actual, Is.Not.Null, $"{what}: {key} is missing");
        var expected = f[key];
        Assert.That(actual!.DType, Is.EqualTo(expected.DType), $"{what}: {key} dtype");
        var e = expected.ToDoubles();
        double atol = AbsShare * e.Select(Math.Abs).DefaultIfEmpty(0).Max();
        Close.Assert(actual.ToDoubles(), e, atol, Rtol, $"{what}: {key}");
    }

    /// <summary>A matrix product's BF16 result: as accurate as PyTorch's against the F32 result (see the file comment).</summary>
    private static void SameProduct(Tensor? actual, SafeTensorsFile f, string key, string what)
    {
        Assert.That(actual, Is.Not.Null, $"{what}: {key} is missing");
        Assert.That(actual!.DType, Is.EqualTo(f[key].DType), $"{what}: {key} dtype");
        var o = actual.ToDoubles();
        var t = f[key].ToDoubles();
        var r = f[key + "_f32"].ToDoubles();
        double errT = Norm(t, r), errO = Norm(o, r), diff = Norm(o, t), floor = Norm(r, new double[r.Length]) / 256;
        Assert.That(errO, Is.LessThanOrEqualTo(errT + floor), $"{what}: {key}: |ours - f32| {errO:G4} vs |torch - f32| {errT:G4}");
        Assert.That(diff, Is.LessThanOrEqualTo(2 * errT + floor), $"{what}: {key}: |ours - torch| {diff:G4} vs |torch - f32| {errT:G4}");
    }

    private static double Norm(double[] a, double[] b) => Math.Sqrt(a.Zip(b, (x, y) => (x - y) * (x - y)).Sum());

    [TestCase("conv2d_3x3_bias")]
    [TestCase("conv2d_stride2_groups2")]
    public void Conv2d(string fixture)
    {
        using var scope = TensorScope.Begin();
        using var f = Load(fixture);
        bool bias = f.Metadata["bias"] == "true";
        var x = In(f, "x", true);
        var w = In(f, "w", true);
        var b = bias ? In(f, "b", true) : null;
        Tensor y;
        using (Autocast.Begin(DType.BF16))
            y = Ops.Conv2d(x, w, b, stride: Int(f, "stride"), padding: Int(f, "padding"), groups: Int(f, "groups"));
        SameProduct(y, f, "y", fixture);
        y.Backward(In(f, "g"));
        SameProduct(x.Grad, f, "dx", fixture);
        SameProduct(w.Grad, f, "dw", fixture);
        if (bias) SameProduct(b!.Grad, f, "db", fixture);
    }

    [Test]
    public void Linear()
    {
        using var scope = TensorScope.Begin();
        using var f = Load("linear");
        var (x, w, b) = (In(f, "x", true), In(f, "w", true), In(f, "b", true));
        Tensor y;
        using (Autocast.Begin(DType.BF16)) y = Ops.Linear(x, w, b);
        SameProduct(y, f, "y", "linear");
        y.Backward(In(f, "g"));
        SameProduct(x.Grad, f, "dx", "linear");
        SameProduct(w.Grad, f, "dw", "linear");
        SameProduct(b.Grad, f, "db", "linear");
    }

    [Test]
    public void BatchNormTakesBf16WithF32Parameters()
    {
        using var scope = TensorScope.Begin();
        using var f = Load("batchnorm2d_train");
        var x = In(f, "x", true);
        var (gamma, beta) = (In(f, "gamma", true), In(f, "beta", true));
        var (rm, rv) = (In(f, "running_mean"), In(f, "running_var"));
        Tensor y;
        using (Autocast.Begin(DType.BF16)) y = Ops.BatchNorm2d(x, gamma, beta, rm, rv, training: true);
        Same(y, f, "y", "batchnorm");
        Same(rm, f, "running_mean_after", "batchnorm");
        Same(rv, f, "running_var_after", "batchnorm");
        y.Backward(In(f, "g"));
        Same(x.Grad, f, "dx", "batchnorm");
        Same(gamma.Grad, f, "dgamma", "batchnorm");
        Same(beta.Grad, f, "dbeta", "batchnorm");
    }

    [TestCase("relu")]
    [TestCase("maxpool2d_3x3_s2_p1")]
    [TestCase("avgpool2d_2")]
    [TestCase("global_avgpool")]
    public void OpsThatKeepTheInputType(string fixture)
    {
        using var scope = TensorScope.Begin();
        using var f = Load(fixture);
        var x = In(f, "x", true);
        Tensor y;
        using (Autocast.Begin(DType.BF16))
            y = fixture switch
            {
                "relu" => Ops.Relu(x),
                "maxpool2d_3x3_s2_p1" => Ops.MaxPool2d(x, 3, 2, 1),
                "avgpool2d_2" => Ops.AvgPool2d(x, 2),
                _ => Ops.GlobalAvgPool2d(x),
            };
        Same(y, f, "y", fixture);
        y.Backward(In(f, "g"));
        Same(x.Grad, f, "dx", fixture);
    }

    [TestCase("add")]
    [TestCase("add_promote")]
    public void AddAndTypePromotion(string fixture)
    {
        using var scope = TensorScope.Begin();
        using var f = Load(fixture);
        var (a, b) = (In(f, "a", true), In(f, "b", true));
        Tensor y;
        using (Autocast.Begin(DType.BF16)) y = Ops.Add(a, b);
        Same(y, f, "y", fixture);
        y.Backward(In(f, "g"));
        Same(a.Grad, f, "da", fixture);
        Same(b.Grad, f, "db", fixture);
    }

    [Test]
    public void CrossEntropyRunsInF32()
    {
        using var scope = TensorScope.Begin();
        using var f = Load("cross_entropy");
        var logits = In(f, "logits", true);
        Tensor loss;
        using (Autocast.Begin(DType.BF16)) loss = Ops.SoftmaxCrossEntropy(logits, In(f, "labels"));
        Same(loss, f, "loss", "cross_entropy");
        loss.Backward();
        Same(logits.Grad, f, "dlogits", "cross_entropy");
    }

    [Test]
    public void CifarResNet20MatchesPyTorchBf16()
    {
        using var scope = TensorScope.Begin();
        using var f = Load("cifar_resnet20_bf16");
        ResNet m;
        using (Init.SkipInitialization()) m = ModelZoo.Create("resnet20", numClasses: 10);
        using var model = m;
        DeterministicInit.Apply(model.StateDict());
        model.Train();
        Tensor logits, loss;
        using (Autocast.Begin(DType.BF16))
        {
            logits = model.Forward(f["x"]);
            loss = Ops.SoftmaxCrossEntropy(logits, f["labels"]);
        }
        Assert.That(logits.DType, Is.EqualTo(DType.BF16), "logits come from a BF16 linear layer");
        Assert.That(loss.DType, Is.EqualTo(DType.F32), "the loss is F32");
        var (lo, lt, lr) = (logits.ToDoubles(), f["logits"].ToDoubles(), f["logits_f32"].ToDoubles());
        double errT = Norm(lt, lr), floor = Norm(lr, new double[lr.Length]) / 256;
        Assert.That(Norm(lo, lr), Is.LessThanOrEqualTo(2 * errT + floor), $"logits: |ours - f32| {Norm(lo, lr):G4} vs |torch - f32| {errT:G4}");
        Within(loss.Item(), f["loss"].Item(), f["loss_f32"].Item(), Math.Abs(f["loss_f32"].Item()) / 256, "loss");
        loss.Backward();
        double sumOurs = 0, sumTorch = 0;
        int count = 0;
        foreach (var (name, p) in model.NamedParameters())
        {
            Assert.That(p.Grad!.DType, Is.EqualTo(DType.F32), $"{name}: the master weight's gradient is F32");
            double ours = p.Grad.ToDoubles().Sum(v => v * v);
            double torch = f["grad_stats." + name].ToDoubles()[1], f32 = f["grad_stats_f32." + name].ToDoubles()[1];
            double eo = (ours - f32) / f32, et = (torch - f32) / f32;
            Assert.That(Math.Abs(eo), Is.LessThanOrEqualTo(0.35), $"{name}: sum of squares of the gradient: ours {ours:G6}, torch bf16 {torch:G6}, f32 {f32:G6}");
            sumOurs += eo * eo;
            sumTorch += et * et;
            count++;
        }
        double rmsOurs = Math.Sqrt(sumOurs / count), rmsTorch = Math.Sqrt(sumTorch / count);
        Assert.That(rmsOurs, Is.LessThanOrEqualTo(1.5 * rmsTorch), $"RMS relative deviation of the gradients' sums of squares from F32: ours {rmsOurs:G4}, PyTorch's {rmsTorch:G4}");
    }

    /// <summary>|ours - f32| &lt;= 2 |torch - f32| + floor: our BF16 error at most twice PyTorch's.</summary>
    private static void Within(double ours, double torch, double f32, double floor, string what) =>
        Assert.That(Math.Abs(ours - f32), Is.LessThanOrEqualTo(2 * Math.Abs(torch - f32) + floor),
            $"{what}: ours {ours:G6}, torch bf16 {torch:G6}, torch f32 {f32:G6}");

    private static int Int(SafeTensorsFile f, string key) => int.Parse(f.Metadata[key], CultureInfo.InvariantCulture);
}
