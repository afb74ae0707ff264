// The AutoAugment family against torchvision 0.14 (Fixtures/recipe/augment.json, made by
// Tools/reference/make_augment_fixtures.py): every operation (shear, translate, rotate,
// brightness, color, contrast, sharpness, posterize, solarize, autocontrast, equalize, invert,
// identity) on small uint8 images through torchvision's _apply_op (nearest, fill 0), compared
// bit for bit (tolerance: none, we reproduce the float32 arithmetic); the magnitude tables of
// TrivialAugmentWide, RandAugment and AutoAugment value for value; the ImageNet policy table;
// and the policies' draws: deterministic per generator, every op reachable, magnitudes and
// probabilities as specified.
using System.Text.Json;
using NUnit.Framework;
using ResidualEngine.Data;

namespace ResidualEngine.Tests.Data;

public class AutoAugmentTests
{
    internal static JsonElement Fixture()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "recipe", "augment.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.Clone();
    }

    private static PlanarImage Image(JsonElement f, string name)
    {
        var e = f.GetProperty("images").GetProperty(name);
        var shape = e.GetProperty("shape").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        return new PlanarImage(shape[0], shape[1], shape[2], Convert.FromBase64String(e.GetProperty("data").GetString()!));
    }

    public static IEnumerable<TestCaseData> OpCases()
    {
        var f = Fixture();
        foreach (var op in Enum.GetNames<AugmentOp>())
        {
            var cases = f.GetProperty("ops").EnumerateArray().Where(c => c.GetProperty("op").GetString() == op).ToList();
            yield return new TestCaseData(op, cases.Count).SetName($"OpMatchesTorchvision({op})");
        }
    }

    [TestCaseSource(nameof(OpCases))]
    public void OpMatchesTorchvision(string opName, int count)
    {
        var op = Enum.Parse<AugmentOp>(opName);
        Assert.That(count, Is.GreaterThanOrEqualTo(op == AugmentOp.Identity ? 2 : 5), $"the fixture has cases of {opName}");
        var f = Fixture();
        foreach (var c in f.GetProperty("ops").EnumerateArray().Where(c => c.GetProperty("op").GetString() == opName))
        {
            double m = c.GetProperty("magnitude").GetDouble();
            var name = c.GetProperty("image").GetString()!;
            var img = Image(f, name);
            var expected = Convert.FromBase64String(c.GetProperty("out").GetString()!);
            AutoAugmentPolicy.ApplyOp(img, op, m);
            int diff = img.Data.Zip(expected).Count(p => p.First != p.Second);
            Assert.That(diff, Is.Zero, $"{opName}({m:R}) on {name} ({img.Channels}x{img.Height}x{img.Width}): {diff} values differ from torchvision");
        }
    }

    private static void SameTable(JsonElement torch, IReadOnlyList<AugmentSpaceEntry> ours, JsonElement signed, string what)
    {
        var names = torch.EnumerateObject().Select(p => p.Name).ToList();
        Assert.That(ours.Select(e => e.Op.ToString()), Is.EqualTo(names), $"{what}: ops in torchvision's order (the draw indexes it)");
        foreach (var e in ours)
        {
            var t = torch.GetProperty(e.Op.ToString()).EnumerateArray().Select(x => (float)x.GetDouble()).ToArray();
            if (t.Length == 1 && t[0] == 0 && e.Magnitudes.Length == 0) continue; // torch's 0-d "no magnitude"
            Assert.That(e.Magnitudes, Is.EqualTo(t), $"{what}: {e.Op} magnitudes, bit for bit");
            Assert.That(e.Signed, Is.EqualTo(signed.GetProperty(e.Op.ToString()).GetBoolean()), $"{what}: {e.Op} signed");
        }
    }

    [Test]
    public void MagnitudeTablesMatchTorchvision()
    {
        var sp = Fixture().GetProperty("spaces");
        SameTable(sp.GetProperty("ta_wide"), AutoAugmentPolicy.TrivialAugmentWideSpace(), sp.GetProperty("ta_wide_signed"), "ta_wide");
        SameTable(sp.GetProperty("ra_13x17"), AutoAugmentPolicy.RandAugmentSpace(31, 13, 17), sp.GetProperty("ra_signed"), "ra 13x17");
        SameTable(sp.GetProperty("ra_224x224"), AutoAugmentPolicy.RandAugmentSpace(31, 224, 224), sp.GetProperty("ra_signed"), "ra 224x224");
        SameTable(sp.GetProperty("imagenet_13x17"), AutoAugmentPolicy.RandAugmentSpace(10, 13, 17, autoAugment: true), sp.GetProperty("imagenet_signed"), "imagenet");
    }

    [Test]
    public void ImageNetPolicyIsTorchvisions()
    {
        var policy = Fixture().GetProperty("policy").EnumerateArray().ToList();
        Assert.That(ImageNetAutoAugment.SubPolicies, Has.Count.EqualTo(policy.Count));
        for (int i = 0; i < policy.Count; i++)
        {
            var steps = policy[i].EnumerateArray().ToList();
            for (int k = 0; k < 2; k++)
            {
                var s = steps[k].EnumerateArray().ToList();
                var ours = ImageNetAutoAugment.SubPolicies[i][k];
                Assert.That(ours.Op.ToString(), Is.EqualTo(s[0].GetString()), $"sub-policy {i} step {k}");
                Assert.That(ours.P, Is.EqualTo(s[1].GetDouble()), $"sub-policy {i} step {k} probability");
                Assert.That(ours.Bin, Is.EqualTo(s[2].ValueKind == JsonValueKind.Null ? -1 : s[2].GetInt32()), $"sub-policy {i} step {k} bin");
            }
        }
    }

    [TestCase("ta_wide")]
    [TestCase("ra")]
    [TestCase("imagenet")]
    public void PoliciesAreDeterministicAndChangeImages(string name)
    {
        var f = Fixture();
        var policy = AutoAugmentPolicy.Create(name);
        int changed = 0;
        for (int seed = 0; seed < 60; seed++)
        {
            var a = Image(f, "smooth");
            var b = Image(f, "smooth");
            policy.Apply(a, new Random(seed));
            policy.Apply(b, new Random(seed));
            Assert.That(a.Data, Is.EqualTo(b.Data), $"{name}: one seed, one image");
            if (!a.Data.SequenceEqual(Image(f, "smooth").Data)) changed++;
        }
        Assert.That(changed, Is.GreaterThan(30), $"{name} changes most images");
    }

    // Replays the policy's draws with a generator of the same seed: the policy must apply exactly
    // that op at that magnitude, and over the seeds every op must come up, signed ones both ways.
    [Test]
    public void TrivialAugmentWideDrawsEveryOpAndBothSigns()
    {
        var space = AutoAugmentPolicy.TrivialAugmentWideSpace();
        var seen = new HashSet<(AugmentOp, bool)>();
        for (int seed = 0; seed < 3000; seed++)
        {
            var rng = new Random(seed);
            var e = space[rng.Next(space.Count)];
            double m = e.Magnitudes.Length > 0 ? e.Magnitudes[rng.Next(e.Magnitudes.Length)] : 0.0;
            bool negative = e.Signed && rng.Next(2) == 1;
            seen.Add((e.Op, negative));
            // The policy made the same draw: its result equals applying that op directly.
            var img = new PlanarImage(3, 9, 11, Enumerable.Range(0, 297).Select(i => (byte)(i * 37 % 256)).ToArray());
            var expect = img.Clone();
            AutoAugmentPolicy.ApplyOp(expect, e.Op, negative ? -m : m);
            new TrivialAugmentWide().Apply(img, new Random(seed));
            Assert.That(img.Data, Is.EqualTo(expect.Data), $"seed {seed}: {e.Op}");
            if (seed > 400 && seen.Count == space.Count(x => !x.Signed) + 2 * space.Count(x => x.Signed)) break;
        }
        Assert.That(seen, Has.Count.EqualTo(space.Count(x => !x.Signed) + 2 * space.Count(x => x.Signed)));
    }

    [Test]
    public void RandAugmentUsesItsMagnitudeBin()
    {
        var img = new PlanarImage(3, 16, 16, Enumerable.Range(0, 768).Select(i => (byte)(i % 251)).ToArray());
        for (int seed = 0; seed < 200; seed++)
        {
            var rng = new Random(seed);
            var space = AutoAugmentPolicy.RandAugmentSpace(31, 16, 16);
            var expect = img.Clone();
            for (int k = 0; k < 3; k++)
            {
                var e = space[rng.Next(space.Count)];
                double m = e.Magnitudes.Length > 0 ? e.Magnitudes[5] : 0.0;
                if (e.Signed && rng.Next(2) == 1) m = -m;
                AutoAugmentPolicy.ApplyOp(expect, e.Op, m);
            }
            var got = img.Clone();
            new RandAugment(numOps: 3, magnitude: 5).Apply(got, new Random(seed));
            Assert.That(got.Data, Is.EqualTo(expect.Data), $"seed {seed}");
        }
        Assert.That(() => new RandAugment(2, 31), Throws.ArgumentException.With.Message.Contains("magnitude"));
        Assert.That(() => AutoAugmentPolicy.Create("cifar10"), Throws.ArgumentException.With.Message.Contains("ta_wide, ra, imagenet"));
    }

    [Test]
    public void ImageNetPolicyAppliesEachStepWithItsProbability()
    {
        // Sub-policy 7 is (Posterize 0.8 bin 5, Equalize 1.0): count how often the first step runs.
        int picked = 0, posterized = 0;
        for (int seed = 0; seed < 20000 && picked < 400; seed++)
        {
            var rng = new Random(seed);
            if (rng.Next(25) != 7) continue;
            picked++;
            if (rng.NextDouble() <= 0.8) posterized++;
        }
        Assert.That(picked, Is.EqualTo(400));
        Assert.That(posterized / 400.0, Is.EqualTo(0.8).Within(0.06));
        // And the policy does what the replayed draws say.
        var img = new PlanarImage(3, 12, 12, Enumerable.Range(0, 432).Select(i => (byte)(i * 7 % 256)).ToArray());
        for (int seed = 0; seed < 300; seed++)
        {
            var rng = new Random(seed);
            var sub = ImageNetAutoAugment.SubPolicies[rng.Next(25)];
            double[] p = [rng.NextDouble(), rng.NextDouble()];
            int[] sign = [rng.Next(2), rng.Next(2)];
            var space = AutoAugmentPolicy.RandAugmentSpace(10, 12, 12, autoAugment: true);
            var expect = img.Clone();
            for (int k = 0; k < 2; k++)
            {
                if (!(p[k] <= sub[k].P)) continue;
                var e = space.First(x => x.Op == sub[k].Op);
                double m = sub[k].Bin >= 0 ? e.Magnitudes[sub[k].Bin] : 0;
                AutoAugmentPolicy.ApplyOp(expect, sub[k].Op, e.Signed && sign[k] == 0 ? -m : m);
            }
            var got = img.Clone();
            new ImageNetAutoAugment().Apply(got, new Random(seed));
            Assert.That(got.Data, Is.EqualTo(expect.Data), $"seed {seed}");
        }
    }

    [Test]
    public void LinspaceIsTorchsFloat32Kernel()
    {
        // Values torch 1.13 gives (in the fixture's tables) that a naive start + i * step misses.
        var ta = Fixture().GetProperty("spaces").GetProperty("ta_wide").GetProperty("Brightness").EnumerateArray().Select(x => (float)x.GetDouble()).ToArray();
        Assert.That(Linspace.Float32(0f, 0.99f, 31), Is.EqualTo(ta));
        float step = 0.99f / 30;
        Assert.That(Enumerable.Range(0, 31).Count(i => 0f + i * step != ta[i]), Is.GreaterThan(0), "the naive formula differs somewhere");
        Assert.That(Linspace.Float32(2f, 5f, 1), Is.EqualTo(new[] { 2f }));
        Assert.That(Linspace.Float32(0f, 1f, 0), Is.Empty);
    }

    [Test]
    public void BadArgumentsAreNamed()
    {
        var img = new PlanarImage(3, 4, 4);
        Assert.That(() => ImageOps.Brightness(img, -0.5), Throws.ArgumentException.With.Message.Contains("brightness factor"));
        Assert.That(() => ImageOps.Posterize(img, 9), Throws.ArgumentException.With.Message.Contains("posterize"));
        Assert.That(() => ImageOps.Solarize(img, 300), Throws.ArgumentException.With.Message.Contains("solarize threshold"));
        Assert.That(() => new PlanarImage(3, 2, 2, new byte[5]), Throws.ArgumentException.With.Message.Contains("needs 12 bytes"));
    }
}
