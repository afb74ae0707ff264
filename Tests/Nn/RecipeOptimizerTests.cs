// AdamW and clip_grad_norm_ against torch 1.13 (float64, fixed gradients; fixture
// Tests/Fixtures/recipe/optimizers.json from Tools/reference/make_recipe_fixtures.py), and LARS
// against its formula written out independently here (torch has no LARS). Also: state survives
// a checkpoint round trip (a resumed optimizer continues exactly), and bad arguments are named.
using System.Text.Json;
using NUnit.Framework;
using ResidualEngine.Nn.Optim;

namespace ResidualEngine.Tests.Nn;

public class RecipeOptimizerTests
{
    private static JsonElement Fixture()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "recipe", "optimizers.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.Clone();
    }

    private static double[] Doubles(JsonElement a) => a.EnumerateArray().Select(x => x.GetDouble()).ToArray();

    private static List<Tensor> Params(JsonElement f)
    {
        var shapes = f.GetProperty("shapes").EnumerateArray().Select(s => new Shape(s.EnumerateArray().Select(d => d.GetInt32()).ToArray())).ToList();
        var init = f.GetProperty("init").EnumerateArray().Select(Doubles).ToList();
        return shapes.Select((s, i) => { var t = TensorScope.Detach(Tensor.FromArray(init[i], s)); t.RequiresGrad = true; return t; }).ToList();
    }

    private static void SetGrads(List<Tensor> ps, JsonElement step)
    {
        var gs = step.EnumerateArray().Select(Doubles).ToList();
        for (int i = 0; i < ps.Count; i++)
        {
            ps[i].Grad?.Dispose();
            ps[i].Grad = TensorScope.Detach(Tensor.FromArray(gs[i], ps[i].Shape));
        }
    }

    [TestCase("adamw")]
    [TestCase("adamw_amsgrad")]
    public void AdamWMatchesTorch(string name)
    {
        var f = Fixture();
        var c = f.GetProperty("optimizers").EnumerateArray().Single(o => o.GetProperty("name").GetString() == name);
        var ps = Params(f);
        using var opt = new AdamW([new ParamGroup(ps, c.GetProperty("weight_decay").GetDouble())], c.GetProperty("lr").GetDouble(),
            c.GetProperty("beta1").GetDouble(), c.GetProperty("beta2").GetDouble(), c.GetProperty("eps").GetDouble(), c.GetProperty("amsgrad").GetBoolean());
        foreach (var step in f.GetProperty("grads").EnumerateArray())
        {
            SetGrads(ps, step);
            opt.Step();
        }
        var after = c.GetProperty("after").EnumerateArray().Select(Doubles).ToList();
        for (int i = 0; i < ps.Count; i++) Assert.That(ps[i].ToDoubles(), Is.EqualTo(after[i]).Within(1e-12), $"parameter {i}");
        Assert.That(opt.StepCount, Is.EqualTo(4));
        foreach (var p in ps) { p.Grad?.Dispose(); p.Dispose(); }
    }

    // The rule runs in the parameters' dtype on their device (as torch's does): in float32 it follows
    // the float64 reference to float32 precision.
    [TestCase("adamw")]
    [TestCase("adamw_amsgrad")]
    public void AdamWInFloat32FollowsTorch(string name)
    {
        var f = Fixture();
        var c = f.GetProperty("optimizers").EnumerateArray().Single(o => o.GetProperty("name").GetString() == name);
        var ps = Params(f).Select(p => { var t = TensorScope.Detach(p.To(DType.F32)); t.RequiresGrad = true; p.Dispose(); return t; }).ToList();
        using var opt = new AdamW([new ParamGroup(ps, c.GetProperty("weight_decay").GetDouble())], c.GetProperty("lr").GetDouble(),
            c.GetProperty("beta1").GetDouble(), c.GetProperty("beta2").GetDouble(), c.GetProperty("eps").GetDouble(), c.GetProperty("amsgrad").GetBoolean());
        foreach (var step in f.GetProperty("grads").EnumerateArray())
        {
            SetGrads(ps, step);
            foreach (var p in ps) { using var g = p.Grad!; p.Grad = TensorScope.Detach(g.To(DType.F32)); }
            opt.Step();
        }
        var after = c.GetProperty("after").EnumerateArray().Select(Doubles).ToList();
        for (int i = 0; i < ps.Count; i++) Assert.That(ps[i].ToDoubles(), Is.EqualTo(after[i]).Within(2e-6), $"parameter {i}");
        Assert.That(opt.StateTensors().First().Buffer.DType, Is.EqualTo(DType.F32), "state in the parameters' dtype");
        foreach (var p in ps) { p.Grad?.Dispose(); p.Dispose(); }
    }

    [Test]
    public void ClipGradNormMatchesTorch()
    {
        var f = Fixture();
        foreach (var c in f.GetProperty("clip").EnumerateArray())
        {
            var ps = Params(f);
            SetGrads(ps, f.GetProperty("grads")[0]);
            foreach (var p in ps) { using var g = p.Grad!; p.Grad = TensorScope.Detach(Ops.Scale(g, 3)); }
            var normType = c.GetProperty("norm_type").ValueKind == JsonValueKind.String ? double.PositiveInfinity : c.GetProperty("norm_type").GetDouble();
            double total = GradClip.ClipGradNorm(ps, c.GetProperty("max_norm").GetDouble(), normType);
            Assert.That(total, Is.EqualTo(c.GetProperty("total_norm").GetDouble()).Within(1e-12));
            var expected = c.GetProperty("grads").EnumerateArray().Select(Doubles).ToList();
            for (int i = 0; i < ps.Count; i++) Assert.That(ps[i].Grad!.ToDoubles(), Is.EqualTo(expected[i]).Within(1e-12), $"max_norm {c.GetProperty("max_norm")}: gradient {i}");
            foreach (var p in ps) { p.Grad?.Dispose(); p.Dispose(); }
        }
        Assert.Throws<ArgumentException>(() => GradClip.ClipGradNorm([], 0));
    }

    [Test]
    public void DeferredClippingKeepsTheNormOnTheDevice()
    {
        var f = Fixture();
        var c = f.GetProperty("clip").EnumerateArray().First(x => x.GetProperty("norm_type").ValueKind != JsonValueKind.String && x.GetProperty("max_norm").GetDouble() == 1.0);
        var ps = Params(f);
        SetGrads(ps, f.GetProperty("grads")[0]);
        foreach (var p in ps) { using var g = p.Grad!; p.Grad = TensorScope.Detach(Ops.Scale(g, 3)); }
        using (var sumSq = GradClip.ClipGradNormDeferred(ps, 1.0)!)
        {
            Assert.That(sumSq.Numel, Is.EqualTo(1));
            Assert.That(Math.Sqrt(sumSq.Item()), Is.EqualTo(c.GetProperty("total_norm").GetDouble()).Within(1e-12));
        }
        var expected = c.GetProperty("grads").EnumerateArray().Select(Doubles).ToList();
        for (int i = 0; i < ps.Count; i++) Assert.That(ps[i].Grad!.ToDoubles(), Is.EqualTo(expected[i]).Within(1e-12));
        Assert.That(GradClip.ClipGradNormDeferred(ps.Select(p => { p.Grad?.Dispose(); p.Grad = null; return p; }).ToList(), 1.0), Is.Null, "no gradients: nothing to clip");
        foreach (var p in ps) p.Dispose();
    }

    [Test]
    public void LarsFollowsItsFormula()
    {
        var rng = new Random(3);
        double[] w0 = Enumerable.Range(0, 12).Select(_ => rng.NextDouble() - 0.5).ToArray();
        double[] b0 = [0.5, -0.25, 1.0];
        var w = TensorScope.Detach(Tensor.FromArray((double[])w0.Clone(), new Shape(4, 3)));
        var b = TensorScope.Detach(Tensor.FromArray((double[])b0.Clone(), new Shape(3)));
        double lr = 0.8, mom = 0.9, wd = 5e-5, eta = 0.001;
        using var opt = new Lars([new ParamGroup([w, b], wd)], lr, mom, eta);
        double[] vw = new double[12], vb = new double[3], ew = (double[])w0.Clone(), eb = (double[])b0.Clone();
        for (int step = 0; step < 3; step++)
        {
            double[] gw = Enumerable.Range(0, 12).Select(_ => rng.NextDouble() - 0.5).ToArray(), gb = [0.1 * step, -0.2, 0.3];
            w.Grad?.Dispose(); b.Grad?.Dispose();
            w.Grad = TensorScope.Detach(Tensor.FromArray(gw, w.Shape));
            b.Grad = TensorScope.Detach(Tensor.FromArray(gb, b.Shape));
            opt.Step();
            // The reference: trust ratio on the matrix; plain momentum SGD without decay on the vector.
            double wn = Math.Sqrt(ew.Sum(x => x * x)), gn = Math.Sqrt(gw.Sum(x => x * x));
            double trust = eta * wn / (gn + wd * wn);
            for (int i = 0; i < 12; i++) { vw[i] = mom * vw[i] + lr * trust * (gw[i] + wd * ew[i]); ew[i] -= vw[i]; }
            for (int i = 0; i < 3; i++) { vb[i] = mom * vb[i] + lr * gb[i]; eb[i] -= vb[i]; }
        }
        Assert.That(w.ToDoubles(), Is.EqualTo(ew).Within(1e-13));
        Assert.That(b.ToDoubles(), Is.EqualTo(eb).Within(1e-13));
        Assert.That(Lars.TrustRatio(0, 1, 0, 0.001, 0), Is.EqualTo(1), "a zero weight keeps the plain rate");
        w.Grad?.Dispose(); b.Grad?.Dispose(); w.Dispose(); b.Dispose();
    }

    [Test]
    public void StateRoundTripContinuesExactly()
    {
        var f = Fixture();
        var steps = f.GetProperty("grads").EnumerateArray().ToList();
        foreach (var make in new Func<List<Tensor>, StatefulOptimizer>[] { ps => new AdamW([new ParamGroup(ps, 0.01)], 0.01), ps => new Lars([new ParamGroup(ps, 1e-4)], 0.5) })
        {
            var a = Params(f);
            using var straight = make(a);
            foreach (var s in steps) { SetGrads(a, s); straight.Step(); }

            var b = Params(f);
            var first = make(b);
            foreach (var s in steps.Take(2)) { SetGrads(b, s); first.Step(); }
            var saved = first.StateTensors().ToDictionary(x => x.Name, x => TensorScope.Detach(x.Buffer.To(Device.Cpu)));
            first.Dispose();
            using var resumed = make(b);
            resumed.LoadState(saved, 2);
            foreach (var s in steps.Skip(2)) { SetGrads(b, s); resumed.Step(); }
            for (int i = 0; i < a.Count; i++) Assert.That(b[i].ToDoubles(), Is.EqualTo(a[i].ToDoubles()), $"{straight.GetType().Name} parameter {i}");
            foreach (var t in saved.Values.Concat(a).Concat(b)) { t.Grad?.Dispose(); t.Dispose(); }
            Assert.Throws<ArgumentException>(() => resumed.LoadState(new Dictionary<string, Tensor> { ["bogus.0"] = a[0] }, 1));
        }
    }

    [Test]
    public void BadHyperParametersAreNamed()
    {
        using var p = TensorScope.Detach(Tensor.Zeros(new Shape(2)));
        Assert.That(Assert.Throws<ArgumentException>(() => new AdamW([new ParamGroup([p], 0)], 0.1, beta1: 1))!.Message, Does.Contain("beta1"));
        Assert.That(Assert.Throws<ArgumentException>(() => new Lars([new ParamGroup([p], 0)], 0.1, eta: 0))!.Message, Does.Contain("eta"));
        Assert.That(Assert.Throws<ArgumentException>(() => new AdamW([new ParamGroup([p], 0)], -1))!.Message, Does.Contain("learning rate"));
    }
}
