// Finite-difference gradient checking in F64, as PyTorch's gradcheck: central differences with
// eps 1e-6 against the analytical gradient of sum(f(inputs) * r) for a fixed random r, and
// |analytical - numerical| <= atol + rtol * |numerical| for every checked element.
using System.Text;
using NUnit.Framework;

namespace ResidualEngine.Tests;

public static class GradCheck
{
    /// <summary>Checks the gradient of <paramref name="f"/> with respect to every input that requires grad.</summary>
    /// <param name="maxPerInput">At most this many elements per input are perturbed (chosen evenly), to bound time.</param>
    public static void Run(Func<Tensor[], Tensor> f, Tensor[] inputs, double eps = 1e-6, double atol = 1e-5, double rtol = 1e-3,
        int maxPerInput = 400, int seed = 1234)
    {
        foreach (var t in inputs)
            Assert.That(t.DType, Is.EqualTo(DType.F64), "gradcheck inputs must be F64");
        using var scope = TensorScope.Begin();
        double[] r;
        {
            var y = f(inputs);
            var rng = new Random(seed);
            r = new double[y.Numel];
            for (int i = 0; i < r.Length; i++) r[i] = rng.NextDouble() * 2 - 1;
            using var rt = Tensor.FromArray(r, y.Shape);
            var loss = Ops.Sum(Ops.Mul(y, rt));
            foreach (var t in inputs) { t.Grad?.Dispose(); t.Grad = null; }
            loss.Backward();
        }

        var report = new StringBuilder();
        int bad = 0;
        for (int k = 0; k < inputs.Length; k++)
        {
            var x = inputs[k];
            if (!x.RequiresGrad) continue;
            Assert.That(x.Grad, Is.Not.Null, $"input {k} received no gradient");
            var analytic = x.Grad!.ToArray<double>();
            long n = x.Numel;
            long step = Math.Max(1, n / maxPerInput);
            // Every write takes the span again: taking the address bumps the storage's version, so
            // caches derived from the data (eval-mode folded weights) see each perturbation.
            for (long i = 0; i < n; i += step)
            {
                double orig = x.Span<double>()[(int)i];
                x.Span<double>()[(int)i] = orig + eps;
                double lp = Eval(f, inputs, r);
                x.Span<double>()[(int)i] = orig - eps;
                double lm = Eval(f, inputs, r);
                x.Span<double>()[(int)i] = orig;
                double numeric = (lp - lm) / (2 * eps);
                double a = analytic[i];
                if (!(Math.Abs(a - numeric) <= atol + rtol * Math.Abs(numeric)))
                {
                    if (bad < 10) report.AppendLine($"  input {k} element {i}: analytical {a:G10}, numerical {numeric:G10}");
                    bad++;
                }
            }
        }
        foreach (var t in inputs) { t.Grad?.Dispose(); t.Grad = null; }
        Assert.That(bad, Is.Zero, $"{bad} gradient mismatches; first ones:\n{report}");
    }

    private static double Eval(Func<Tensor[], Tensor> f, Tensor[] inputs, double[] r)
    {
        using var scope = TensorScope.Begin();
        using var ng = ResidualEngine.Autograd.GradMode.NoGrad();
        var y = f(inputs);
        var yv = y.ToArray<double>();
        double s = 0;
        for (int i = 0; i < yv.Length; i++) s += yv[i] * r[i];
        return s;
    }

    /// <summary>A fresh F64 leaf of random normal values that requires grad (owned by the caller's scope).</summary>
    public static Tensor Leaf(Random rng, params int[] dims)
    {
        var t = Tensor.Randn(new Shape(dims), rng, DType.F64);
        t.RequiresGrad = true;
        return t;
    }
}
