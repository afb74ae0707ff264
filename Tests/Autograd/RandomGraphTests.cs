// Randomised graphs against finite differences: add/sub/mul/reshape/alias/relu/sum with reused
// inputs, intermediates whose handles are disposed before backward, and user-supplied seed
// gradients (which must come back unchanged). In F64, seeded, a few hundred graphs.
using NUnit.Framework;
using ResidualEngine.Autograd;

namespace ResidualEngine.Tests.Autograd;

public class RandomGraphTests
{
    private enum Op { Add, Sub, Mul, Relu, Reshape, Alias, Scale }

    private sealed record Step(Op Op, int A, int B, int[] Dims, bool DisposeA);

    private sealed record Recipe(int Inputs, bool[] Trainable, List<Step> Steps, int Output, bool Scalar);

    [Test]
    public void RandomGraphsMatchFiniteDifferences()
    {
        var rng = new Random(20261202);
        int checkedGraphs = 0;
        for (int g = 0; g < 300; g++)
        {
            var recipe = MakeRecipe(rng);
            CheckRecipe(recipe, rng, g);
            checkedGraphs++;
        }
        Assert.That(checkedGraphs, Is.EqualTo(300));
    }

    private static Recipe MakeRecipe(Random rng)
    {
        int inputs = rng.Next(1, 4);
        var trainable = new bool[inputs];
        for (int i = 0; i < inputs; i++) trainable[i] = rng.NextDouble() < 0.8;
        trainable[rng.Next(inputs)] = true;
        var steps = new List<Step>();
        int count = inputs;
        int n = rng.Next(2, 10);
        var shapes = new[] { new[] { 2, 3 }, new[] { 3, 2 }, new[] { 6 }, new[] { 1, 6 } };
        for (int s = 0; s < n; s++)
        {
            var op = (Op)rng.Next(7);
            // Bias picks towards recent values and inputs, so that values are reused.
            int a = rng.NextDouble() < 0.5 ? count - 1 : rng.Next(count);
            int b = rng.Next(count);
            // Disposing a handle early must not break backward; never dispose the graph's inputs.
            bool dispose = a >= inputs && rng.NextDouble() < 0.3;
            steps.Add(new Step(op, a, b, shapes[rng.Next(shapes.Length)], dispose));
            count++;
        }
        // The output is the last value, or (sometimes) a reused earlier one that is still alive.
        return new Recipe(inputs, trainable, steps, count - 1, rng.NextDouble() < 0.5);
    }

    /// <summary>Builds the graph; values[i] null means its handle was disposed.</summary>
    private static Tensor Build(Recipe r, Tensor[] leaves, List<Tensor?> values)
    {
        values.Clear();
        values.AddRange(leaves);
        foreach (var s in r.Steps)
        {
            // A disposed operand is replaced by the newest live value (the recipe stays valid).
            Tensor a = values[s.A] ?? Newest(values), b = values[s.B] ?? Newest(values);
            if (b.Shape != a.Shape) b = Ops.Reshape(b, a.Shape.Dims.ToArray());
            Tensor y = s.Op switch
            {
                Op.Add => Ops.Add(a, b),
                Op.Sub => Ops.Sub(a, b),
                Op.Mul => Ops.Mul(a, b),
                Op.Relu => Ops.Relu(a),
                Op.Reshape => Ops.Reshape(a, s.Dims),
                Op.Alias => a.Alias(),
                _ => Ops.Scale(a, -1.5),
            };
            if (s.DisposeA && values[s.A] is { } old)
            {
                old.Dispose();
                values[s.A] = null;
            }
            values.Add(y);
        }
        var output = values[r.Output] ?? Newest(values);
        return r.Scalar ? Ops.Sum(output) : output;
    }

    private static Tensor Newest(List<Tensor?> values)
    {
        for (int i = values.Count - 1; i >= 0; i--) if (values[i] is { } t) return t;
        throw new InvalidOperationException("no live value");
    }

    private static void CheckRecipe(Recipe r, Random rng, int graph)
    {
        using var scope = TensorScope.Begin();
        var leaves = new Tensor[r.Inputs];
        for (int i = 0; i < r.Inputs; i++)
        {
            leaves[i] = Tensor.Randn(new Shape(2, 3), rng, DType.F64);
            leaves[i].RequiresGrad = r.Trainable[i];
        }
        var values = new List<Tensor?>();
        var y = Build(r, leaves, values);
        if (!y.RequiresGrad) return; // only untrainable inputs reached the output
        var seedValues = new double[y.Numel];
        for (int i = 0; i < seedValues.Length; i++) seedValues[i] = rng.NextDouble() * 2 - 1;
        Tensor? seed = r.Scalar ? null : Tensor.FromArray(seedValues, y.Shape);
        y.Backward(seed);
        if (seed is not null)
            Assert.That(seed.ToArray<double>(), Is.EqualTo(seedValues), $"graph {graph}: backward wrote into the user's seed gradient");

        for (int k = 0; k < r.Inputs; k++)
        {
            var x = leaves[k];
            if (!x.RequiresGrad) continue;
            var analytic = x.Grad?.ToArray<double>() ?? new double[x.Numel];
            var data = x.Span<double>();
            for (int i = 0; i < data.Length; i++)
            {
                const double eps = 1e-6;
                double orig = data[i];
                data[i] = orig + eps;
                double lp = Eval(r, leaves, seedValues);
                data[i] = orig - eps;
                double lm = Eval(r, leaves, seedValues);
                data[i] = orig;
                double numeric = (lp - lm) / (2 * eps);
                Assert.That(analytic[i], Is.EqualTo(numeric).Within(1e-5 + 1e-4 * Math.Abs(numeric)),
                    $"graph {graph} ({Describe(r)}): input {k} element {i}");
            }
        }
    }

    private static double Eval(Recipe r, Tensor[] leaves, double[] seed)
    {
        using var scope = TensorScope.Begin();
        using var ng = GradMode.NoGrad();
        var y = Build(r, leaves, new List<Tensor?>()).ToArray<double>();
        if (r.Scalar) return y[0];
        double s = 0;
        for (int i = 0; i < y.Length; i++) s += y[i] * seed[i];
        return s;
    }

    private static string Describe(Recipe r) =>
        string.Join(", ", r.Steps.Select(s => $"{s.Op}({s.A},{s.B}{(s.DisposeA ? ",dispose" : "")})")) + $" -> {r.Output}{(r.Scalar ? " sum" : " seeded")}";
}
