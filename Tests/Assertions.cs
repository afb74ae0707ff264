// Numeric comparison helpers: |actual - expected| <= atol + rtol * |expected|, reporting the
// first mismatches with their indices.
using System.Text;
using NUnit.Framework;

namespace ResidualEngine.Tests;

public static class Close
{
    public static void Assert(double[] actual, double[] expected, double atol, double rtol, string what)
    {
        NUnit.Framework.Assert.That(actual, Has.Length.EqualTo(expected.Length), $"{what}: length");
        var sb = new StringBuilder();
        int bad = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            if (Math.Abs(actual[i] - expected[i]) <= atol + rtol * Math.Abs(expected[i])) continue;
            if (bad < 8) sb.AppendLine($"  [{i}] actual {actual[i]:G9} expected {expected[i]:G9}");
            bad++;
        }
        NUnit.Framework.Assert.That(bad, Is.Zero, $"{what}: {bad} of {actual.Length} elements differ (atol {atol}, rtol {rtol}):\n{sb}");
    }

    public static void Assert(Tensor actual, Tensor expected, double atol, double rtol, string what)
    {
        NUnit.Framework.Assert.That(actual.Shape, Is.EqualTo(expected.Shape), $"{what}: shape");
        Assert(actual.ToDoubles(), expected.ToDoubles(), atol, rtol, what);
    }
}
