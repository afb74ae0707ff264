// SGD: three steps against torch.optim.SGD's update rule written out here by hand (and against
// results printed by PyTorch itself), for plain, momentum, dampening, Nesterov and weight decay;
// parameter groups without BN/bias decay; skipped parameters; checkpoint state round trip;
// the parallel path for large tensors; and hyper-parameter validation.
using NUnit.Framework;
using ResidualEngine.Nn;
using ResidualEngine.Nn.Optim;

namespace ResidualEngine.Tests.Nn;

public class SgdTests
{
    /// <summary>torch.optim.SGD's documented rule, step by step, in double.</summary>
    private static double[] Reference(double[] p0, double[][] grads, double lr, double momentum, double dampening, double wd, bool nesterov)
    {
        var p = (double[])p0.Clone();
        double[]? buf = null;
        foreach (var g in grads)
        {
            var d = new double[p.Length];
            for (int i = 0; i < p.Length; i++) d[i] = g[i] + wd * p[i];
            if (momentum != 0)
            {
                if (buf is null) buf = (double[])d.Clone();
                else for (int i = 0; i < p.Length; i++) buf[i] = momentum * buf[i] + (1 - dampening) * d[i];
                for (int i = 0; i < p.Length; i++) d[i] = nesterov ? d[i] + momentum * buf[i] : buf[i];
            }
            for (int i = 0; i < p.Length; i++) p[i] -= lr * d[i];
        }
        return p;
    }

    private static double[][] RandomGrads(Random rng, int steps, int n) =>
        Enumerable.Range(0, steps).Select(_ => Enumerable.Range(0, n).Select(_ => rng.NextDouble() * 2 - 1).ToArray()).ToArray();

    private static void SetGrad(Tensor p, double[] g)
    {
        p.Grad?.Dispose();
        p.Grad = TensorScope.Detach(Tensor.FromDoubles(g, p.Shape, p.DType));
    }

    private static Tensor Param(double[] v, DType dt = DType.F64, params int[] dims)
    {
        var t = Tensor.FromDoubles(v, dims.Length == 0 ? new Shape(v.Length) : new Shape(dims), dt);
        t.RequiresGrad = true;
        return t;
    }

    private static readonly double[][] TorchGrads = [[0.3, -0.1, 0.2], [-0.5, 0.4, 0.0], [0.25, 0.25, -1.0]];

    // Final parameters printed by torch 1.13 for p = [1, -2, 0.5], lr 0.1 and the gradients above.
    [TestCase(0.9, 0.0, 0.01, false, new[] { 0.983158769, -2.062687588, 0.5430733795 })]
    [TestCase(0.9, 0.3, 0.05, false, new[] { 0.94435482125, -1.996392255, 0.504255099375 })]
    [TestCase(0.8, 0.0, 0.1, true, new[] { 0.9187142719999999, -1.9712097039999998, 0.5873434200000001 })]
    [TestCase(0.0, 0.0, 0.0, false, new[] { 0.995, -2.0549999999999997, 0.58 })]
    public void MatchesPyTorch(double momentum, double dampening, double wd, bool nesterov, double[] expected)
    {
        using var scope = TensorScope.Begin();
        var p = Param([1.0, -2.0, 0.5]);
        using var opt = new Sgd([new ParamGroup([p], wd)], 0.1, momentum, dampening, nesterov);
        foreach (var g in TorchGrads)
        {
            SetGrad(p, g);
            opt.Step();
        }
        Close.Assert(p.ToDoubles(), expected, 1e-14, 1e-12, "parameters");
        Close.Assert(expected, Reference([1.0, -2.0, 0.5], TorchGrads, 0.1, momentum, dampening, wd, nesterov), 1e-14, 1e-12, "hand-written rule");
    }

    [TestCase(0.0, 0.0, 0.0, false)]
    [TestCase(0.0, 0.0, 1e-2, false)]
    [TestCase(0.9, 0.0, 0.0, false)]
    [TestCase(0.9, 0.0, 1e-4, false)]
    [TestCase(0.5, 0.5, 1e-2, false)]
    [TestCase(0.9, 0.0, 1e-3, true)]
    public void ThreeStepsFollowTheTorchRule(double momentum, double dampening, double wd, bool nesterov)
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(1);
        var p0 = Enumerable.Range(0, 37).Select(_ => rng.NextDouble() * 4 - 2).ToArray(); // odd length: SIMD body and tail
        var grads = RandomGrads(rng, 3, p0.Length);
        foreach (var dt in new[] { DType.F64, DType.F32 })
        {
            var p = Param(p0, dt, 37);
            using var opt = new Sgd([new ParamGroup([p], wd)], 0.05, momentum, dampening, nesterov);
            foreach (var g in grads)
            {
                SetGrad(p, g);
                opt.Step();
            }
            double tol = dt == DType.F64 ? 1e-13 : 1e-5;
            Close.Assert(p.ToDoubles(), Reference(p0, grads, 0.05, momentum, dampening, wd, nesterov), tol, tol, $"{dt} parameters");
            Assert.That(opt.StepCount, Is.EqualTo(3));
        }
    }

    [Test]
    public void LargeParametersTakeTheParallelPathCorrectly()
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(2);
        int n = 300_001;
        var p0 = Enumerable.Range(0, n).Select(_ => rng.NextDouble() - 0.5).ToArray();
        var grads = RandomGrads(rng, 3, n);
        var p = Param(p0);
        using var opt = new Sgd([new ParamGroup([p], 1e-4)], 0.1, 0.9, 0, nesterov: true);
        foreach (var g in grads) { SetGrad(p, g); opt.Step(); }
        Close.Assert(p.ToDoubles(), Reference(p0, grads, 0.1, 0.9, 0, 1e-4, true), 1e-13, 1e-12, "parameters");
    }

    private sealed class Tiny : Module
    {
        public Tiny()
        {
            Weight = RegisterParameter("weight", Tensor.FromArray(new double[] { 1, 2, 3, 4, 5, 6 }, 2, 3));
            Bias = RegisterParameter("bias", Tensor.FromArray(new double[] { 0.5, -0.5 }, 2));
            BnWeight = RegisterParameter("bn_weight", Tensor.FromArray(new double[] { 1, 1 }, 2));
        }
        public Tensor Weight { get; }
        public Tensor Bias { get; }
        public Tensor BnWeight { get; }
        public override Tensor Forward(Tensor x) => x;
    }

    [Test]
    public void ForModuleWithoutBnDecayPutsRankOneParametersInAZeroDecayGroup()
    {
        using var scope = TensorScope.Begin();
        using var m = new Tiny();
        using var opt = Sgd.ForModule(m, 0.1, momentum: 0.9, weightDecay: 0.01, noBnWeightDecay: true);
        Assert.That(opt.Groups, Has.Count.EqualTo(2));
        Assert.That(opt.Groups[0].Parameters, Is.EqualTo(new[] { m.Weight }));
        Assert.That(opt.Groups[0].WeightDecay, Is.EqualTo(0.01));
        Assert.That(opt.Groups[1].Parameters, Is.EqualTo(new[] { m.Bias, m.BnWeight }));
        Assert.That(opt.Groups[1].WeightDecay, Is.Zero);

        var rng = new Random(3);
        var tensors = new[] { m.Weight, m.Bias, m.BnWeight };
        var p0 = tensors.Select(t => t.ToDoubles()).ToArray();
        var grads = tensors.Select(t => RandomGrads(rng, 3, (int)t.Numel)).ToArray();
        for (int s = 0; s < 3; s++)
        {
            for (int i = 0; i < 3; i++) SetGrad(tensors[i], grads[i][s]);
            opt.Step();
        }
        double[] wds = [0.01, 0, 0];
        for (int i = 0; i < 3; i++)
            Close.Assert(tensors[i].ToDoubles(), Reference(p0[i], grads[i], 0.1, 0.9, 0, wds[i], false), 1e-14, 1e-12, tensors[i].Name!);

        using var all = Sgd.ForModule(m, 0.1);
        Assert.That(all.Groups, Has.Count.EqualTo(1));
        Assert.That(all.Groups[0].WeightDecay, Is.EqualTo(1e-4));
        Assert.That(all.Momentum, Is.EqualTo(0.9));
    }

    [Test]
    public void ParametersWithoutGradientAreSkippedAndZeroGradDropsGradients()
    {
        using var scope = TensorScope.Begin();
        var a = Param([1.0, 2.0]);
        var b = Param([3.0, 4.0]);
        using var opt = new Sgd([new ParamGroup([a, b], 0.1)], 0.5, momentum: 0.9);
        SetGrad(b, [1.0, 1.0]);
        opt.Step();
        Assert.That(a.ToDoubles(), Is.EqualTo(new[] { 1.0, 2.0 }));
        Close.Assert(b.ToDoubles(), Reference([3.0, 4.0], [[1.0, 1.0]], 0.5, 0.9, 0, 0.1, false), 1e-15, 1e-14, "b");
        Assert.That(opt.StateTensors().Select(s => s.Name), Is.EqualTo(new[] { "momentum.1" }));
        Assert.That(opt.StepCount, Is.EqualTo(1));
        opt.ZeroGrad();
        Assert.That(a.Grad, Is.Null);
        Assert.That(b.Grad, Is.Null);
    }

    [Test]
    public void StateRoundTripContinuesExactly()
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(4);
        var v0 = new[] { 0.3, -0.7, 1.1 };
        var w0 = new[] { 2.0, -1.0 };
        var grads = RandomGrads(rng, 4, 5);
        var a1 = Param(v0); var b1 = Param(w0);
        var a2 = Param(v0); var b2 = Param(w0);
        using var o1 = new Sgd([new ParamGroup([a1], 0.01), new ParamGroup([b1], 0)], 0.1, 0.9, 0.1);
        using var o2 = new Sgd([new ParamGroup([a2], 0.01), new ParamGroup([b2], 0)], 0.1, 0.9, 0.1);
        for (int s = 0; s < 2; s++)
        {
            SetGrad(a1, grads[s][..3]); SetGrad(b1, grads[s][3..]);
            SetGrad(a2, grads[s][..3]); SetGrad(b2, grads[s][3..]);
            o1.Step();
            o2.Step();
        }
        // Checkpoint o1 (copies, as a checkpoint would hold), disturb o2, then restore it from the checkpoint.
        var saved = o1.StateTensors().ToDictionary(s => s.Name, s => s.Buffer.To(DType.F32));
        Assert.That(saved.Keys, Is.EqualTo(new[] { "momentum.0", "momentum.1" }));
        SetGrad(a2, [9, 9, 9]); SetGrad(b2, [9, 9]);
        o2.Step();
        a2.Backend.Copy(a2, a1); b2.Backend.Copy(b2, b1);
        o2.LoadState(saved, o1.StepCount);
        Assert.That(o2.StepCount, Is.EqualTo(2));
        for (int s = 2; s < 4; s++)
        {
            SetGrad(a1, grads[s][..3]); SetGrad(b1, grads[s][3..]);
            SetGrad(a2, grads[s][..3]); SetGrad(b2, grads[s][3..]);
            o1.Step();
            o2.Step();
        }
        // The buffers went through F32, so agreement is to single precision.
        Close.Assert(a2.ToDoubles(), a1.ToDoubles(), 1e-6, 1e-6, "a");
        Close.Assert(b2.ToDoubles(), b1.ToDoubles(), 1e-6, 1e-6, "b");

        // An empty state drops the buffers: the next step starts momentum afresh.
        o2.LoadState(new Dictionary<string, Tensor>(), 0);
        Assert.That(o2.StateTensors(), Is.Empty);
        Assert.That(o2.StepCount, Is.Zero);
    }

    [Test]
    public void BadStateIsRejected()
    {
        using var scope = TensorScope.Begin();
        var a = Param([1.0, 2.0]);
        using var opt = new Sgd([new ParamGroup([a], 0)], 0.1, 0.9);
        var good = Tensor.Zeros(new Shape(2), DType.F64);
        Assert.That(Assert.Throws<ArgumentException>(() => opt.LoadState(new Dictionary<string, Tensor> { ["velocity.0"] = good }, 1))!.Message,
            Does.Contain("velocity.0"));
        Assert.That(Assert.Throws<ArgumentException>(() => opt.LoadState(new Dictionary<string, Tensor> { ["momentum.1"] = good }, 1))!.Message,
            Does.Contain("parameter 1"));
        Assert.That(Assert.Throws<ArgumentException>(() => opt.LoadState(new Dictionary<string, Tensor> { ["momentum.0"] = Tensor.Zeros(new Shape(3), DType.F64) }, 1))!.Message,
            Does.Contain("shape"));
        Assert.That(Assert.Throws<ArgumentException>(() => opt.LoadState(new Dictionary<string, Tensor>(), -1))!.Message,
            Does.Contain("step count"));
    }

    [Test]
    public void InvalidHyperParametersAreRejected()
    {
        using var scope = TensorScope.Begin();
        var a = Param([1.0]);
        ParamGroup[] g = [new ParamGroup([a], 0)];
        Assert.That(Assert.Throws<ArgumentException>(() => new Sgd(g, -0.1))!.Message, Does.Contain("learning rate"));
        Assert.That(Assert.Throws<ArgumentException>(() => new Sgd(g, double.NaN))!.Message, Does.Contain("learning rate"));
        Assert.That(Assert.Throws<ArgumentException>(() => new Sgd(g, 0.1, momentum: -0.5))!.Message, Does.Contain("momentum"));
        Assert.That(Assert.Throws<ArgumentException>(() => new Sgd(g, 0.1, momentum: 0, nesterov: true))!.Message, Does.Contain("Nesterov"));
        Assert.That(Assert.Throws<ArgumentException>(() => new Sgd(g, 0.1, momentum: 0.9, dampening: 0.1, nesterov: true))!.Message, Does.Contain("dampening"));
        Assert.That(Assert.Throws<ArgumentException>(() => new Sgd([new ParamGroup([a], -1e-4)], 0.1))!.Message, Does.Contain("weight decay"));
        Assert.That(Assert.Throws<ArgumentException>(() => new Sgd([new ParamGroup([], 0)], 0.1))!.Message, Does.Contain("empty parameter list"));
        Assert.That(Assert.Throws<ArgumentException>(() => new Sgd([new ParamGroup([a], 0), new ParamGroup([a], 0)], 0.1))!.Message,
            Does.Contain("more than once"));
        using var opt = new Sgd(g, 0.1);
        Assert.That(Assert.Throws<ArgumentException>(() => opt.LearningRate = -1)!.Message, Does.Contain("learning rate"));
        opt.LearningRate = 0.25;
        SetGrad(a, [2.0]);
        opt.Step();
        Assert.That(a.Item(), Is.EqualTo(0.5).Within(1e-15));
    }
}
