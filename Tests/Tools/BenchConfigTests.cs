// Argument handling of `residual bench`: defaults, validation with messages that name the option,
// the precisions (fp32, tf32, bf16, fp16 and synonyms) and formats (nchw, nhwc = --channels-last), and
// the options handed to the PyTorch script.
using NUnit.Framework;
using ResidualEngine.Tools.Bench;
using ResidualEngine.Tools.Cli;

namespace ResidualEngine.Tests.Tools;

public class BenchConfigTests
{
    private static BenchConfig Parse(params string[] args) => BenchConfig.Parse(new Args(args, "profile", "quick", "channels-last"), new BenchConfig());

    [Test]
    public void ParsesEveryOption()
    {
        var c = Parse("--model", "resnet20", "--batch-size", "2", "--image-size", "32", "--device", "cpu", "--mode", "infer",
            "--warmup", "0", "--steps", "3", "--threads", "1", "--precision", "fp32", "--format", "nchw", "--seed", "7", "--profile");
        Assert.That(c.Model, Is.EqualTo("resnet20"));
        Assert.That((c.BatchSize, c.ImageSize, c.Warmup, c.Steps, c.Threads, c.Seed), Is.EqualTo((2, (int?)32, 0, 3, 1, 7)));
        Assert.That(c.Mode, Is.EqualTo(BenchMode.Infer));
        Assert.That(c.Device, Is.EqualTo(Device.Cpu));
        Assert.That(c.Profile, Is.True);
    }

    [Test]
    public void DefaultsApplyWhenOptionsAreMissing()
    {
        var c = Parse();
        Assert.That(c, Is.EqualTo(new BenchConfig()));
        Assert.That(c.ImageSize, Is.Null, "image size defaults to the model's native size");
    }

    [TestCase("--batch-size", "0", "--batch-size")]
    [TestCase("--batch-size", "x", "--batch-size")]
    [TestCase("--steps", "0", "--steps")]
    [TestCase("--warmup", "-1", "--warmup")]
    [TestCase("--image-size", "2", "--image-size")]
    [TestCase("--mode", "fit", "--mode")]
    [TestCase("--device", "tpu", "device")]
    [TestCase("--threads", "-2", "--threads")]
    [TestCase("--precision", "int8", "--precision")]
    public void BadValuesNameTheOption(string option, string value, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => Parse(option, value));
        Assert.That(e!.Message, Does.Contain(expected));
    }

    [TestCase("--precision", "fp16", "fp16")]
    [TestCase("--precision", "half", "fp16")]
    [TestCase("--precision", "bf16", "bf16")]
    [TestCase("--precision", "bfloat16", "bf16")]
    [TestCase("--precision", "TF32", "tf32")]
    [TestCase("--format", "nhwc", "nhwc")]
    [TestCase("--format", "channels_last", "nhwc")]
    [TestCase("--channels-last", null, "nhwc")]
    public void PrecisionsAndFormatsParse(string option, string? value, string expected)
    {
        var c = value is null ? Parse(option) : Parse(option, value);
        Assert.That(option == "--precision" ? c.Precision : c.Format, Is.EqualTo(expected));
        var args = c.ToArgs();
        Assert.That(args, Does.Contain(expected), "the baseline script gets the same precision and format");
    }

    [TestCase("--format", "nhcw")]
    [TestCase("--precision", "int8")]
    public void UnknownPrecisionsAndFormatsNameTheOption(string option, string value)
    {
        var e = Assert.Throws<ArgumentException>(() => Parse(option, value));
        Assert.That(e!.Message, Does.Contain(option).And.Contain(value));
    }

    [Test]
    public void UnknownOptionsAreRejected()
    {
        var a = new Args(["--model", "resnet18", "--batchsize", "3"]);
        BenchConfig.Parse(a, new BenchConfig());
        var e = Assert.Throws<ArgumentException>(a.RejectUnknown);
        Assert.That(e!.Message, Does.Contain("--batchsize"));
    }

    [Test]
    public void PythonArgumentsCarryTheSameConfiguration()
    {
        var c = Parse("--model", "plain20", "--batch-size", "8", "--threads", "2", "--mode", "infer", "--seed", "3");
        var args = c.ToArgs(32, 10);
        string Value(string name) => args[args.ToList().IndexOf(name) + 1];
        Assert.That(Value("--model"), Is.EqualTo("plain20"));
        Assert.That(Value("--batch-size"), Is.EqualTo("8"));
        Assert.That(Value("--image-size"), Is.EqualTo("32"));
        Assert.That(Value("--num-classes"), Is.EqualTo("10"));
        Assert.That(Value("--threads"), Is.EqualTo("2"));
        Assert.That(Value("--mode"), Is.EqualTo("infer"));
        Assert.That(Value("--device"), Is.EqualTo("cpu"));
        Assert.That(Value("--seed"), Is.EqualTo("3"));
        Assert.That(Value("--precision"), Is.EqualTo("fp32"));
        Assert.That(Value("--format"), Is.EqualTo("nchw"));
        // And our own parser reads the same options back into the same configuration.
        var back = BenchConfig.Parse(new Args(args.ToArray()), new BenchConfig());
        Assert.That(back, Is.EqualTo(c with { ImageSize = 32, NumClasses = 10 }));
        Assert.That(c.ToArgs(), Does.Not.Contain("--image-size"), "the model's native size is left to each side");
    }
}
