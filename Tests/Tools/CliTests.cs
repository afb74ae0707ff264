// The `residual` command line as a user meets it: every command answers -h (exit 0, every option
// mentioned) and --version; the help's defaults are the library's; usage errors exit 2 on stderr
// with a suggestion for typos; an empty value or an option-looking value is an error (issue 10,
// items 11 and 12); response files work.
using System.CommandLine;
using NUnit.Framework;
using ResidualEngine.Tools.Cli;
using ResidualEngine.Training;

namespace ResidualEngine.Tests.ToolsCli;

public class CliTests
{
    private static (int Rc, string Out, string Err) Run(params string[] args)
    {
        using var o = new StringWriter();
        using var e = new StringWriter();
        int rc = CliApp.Run(args, o, e);
        return (rc, o.ToString(), e.ToString());
    }

    private static string[] PathOf(Command c) => CliApp.CommandPath(c).Split(' ').Skip(1).ToArray();

    [Test]
    public void EveryCommandAnswersHelpAndMentionsEveryOption()
    {
        var commands = CliApp.AllCommands(CliApp.CreateRoot()).ToList();
        Assert.That(commands.Select(CliApp.CommandPath), Does.Contain("residual train").And.Contain("residual eval").And.Contain("residual bench compare")
            .And.Contain("residual data synth").And.Contain("residual kernels check").And.Contain("residual experiment gradients"));
        foreach (var c in commands)
        {
            foreach (var h in new[] { "-h", "--help" })
            {
                var (rc, output, err) = Run([.. PathOf(c), h]);
                Assert.That(rc, Is.Zero, $"{CliApp.CommandPath(c)} {h}: {err}");
                Assert.That(err, Is.Empty, CliApp.CommandPath(c));
                foreach (var o in c.Options.Where(o => !o.Hidden)) Assert.That(output, Does.Contain(o.Name), $"{CliApp.CommandPath(c)} {h} mentions {o.Name}");
                foreach (var s in c.Subcommands) Assert.That(output, Does.Contain(s.Name), $"{CliApp.CommandPath(c)} {h} mentions {s.Name}");
            }
        }
    }

    [Test]
    public void EveryCommandAnswersVersion()
    {
        foreach (var c in CliApp.AllCommands(CliApp.CreateRoot()))
        {
            var (rc, output, err) = Run([.. PathOf(c), "--version"]);
            Assert.That(rc, Is.Zero, $"{CliApp.CommandPath(c)} --version: {err}");
            Assert.That(output.Trim(), Does.Match(@"^\d+\.\d+\.\d+"), CliApp.CommandPath(c));
        }
    }

    [Test]
    public void TrainHelpShowsTheLibraryDefaults()
    {
        var (_, help, _) = Run("train", "--help");
        var fresh = new TrainOptions();
        foreach (var opt in TrainOptionTable.All)
        {
            var line = help.Split('\n').Single(l => l.TrimStart().StartsWith("--" + opt.Name + " ", StringComparison.Ordinal) || l.Trim() == "--" + opt.Name
                || l.TrimStart().StartsWith("--" + opt.Name + ",", StringComparison.Ordinal));
            var shown = System.Text.RegularExpressions.Regex.Match(help[help.IndexOf(line, StringComparison.Ordinal)..], @"\[default: ([^\]]*)\]");
            if (opt.IsSwitch || opt.Default is null || opt.Default is int[] { Length: 0 }) continue;
            Assert.That(shown.Success, Is.True, $"--{opt.Name} shows its default");
            Assert.That(shown.Groups[1].Value, Is.EqualTo(TrainOption.Format(opt.Get(fresh)!)), $"--{opt.Name}");
        }
        // And the parser with no options gives exactly those defaults.
        Assert.That(TrainCli.Parse([]).ToJsonText(), Is.EqualTo(fresh.ToJsonText()));
    }

    [Test]
    public void UsageErrorsExitTwoOnStderrWithSuggestions()
    {
        var (rc, output, err) = Run("train", "--epoch", "3");
        Assert.That((rc, output), Is.EqualTo((2, "")));
        Assert.That(err, Does.Contain("--epoch").And.Contain("did you mean --epochs"));
        (rc, output, err) = Run("trian");
        Assert.That((rc, output), Is.EqualTo((2, "")));
        Assert.That(err, Does.Contain("did you mean train"));
        (rc, output, err) = Run("train", "--epochs", "0");
        Assert.That((rc, output), Is.EqualTo((2, "")));
        Assert.That(err, Does.Contain("--epochs must be at least 1"));
        (rc, output, err) = Run();
        Assert.That((rc, output), Is.EqualTo((2, "")), "a bare `residual` is a usage error");
        Assert.That(err, Does.Contain("train").And.Contain("eval"), "the overview goes to stderr");
        (rc, _, err) = Run("kernels");
        Assert.That(rc, Is.EqualTo(2), err);
    }

    [Test]
    public void AnUnknownFlagDoesNotSwallowTheNextOption()
    {
        var (rc, _, err) = Run("train", "--verbose-ish", "--epochs", "1");
        Assert.That(rc, Is.EqualTo(2));
        Assert.That(err, Does.Contain("--verbose-ish"));
        Assert.That(err, Does.Not.Contain("'1'"), "--epochs 1 was read as an option and its value");
    }

    [Test]
    public void AnOptionMissingItsValueDoesNotTakeTheNextOption()
    {
        // Issue 10 item 12: `--out --nesterov` made a run directory named --nesterov.
        var (rc, _, err) = Run("train", "--out", "--nesterov", "--epochs", "1");
        Assert.That(rc, Is.EqualTo(2));
        Assert.That(err, Does.Contain("--out").And.Contain("--out=--nesterov"));
        Assert.That(() => TrainCli.Parse(["--out", "--not-an-option"]), Throws.InstanceOf<ArgumentException>().With.Message.Contains("--out"));
        Assert.That(TrainCli.Parse(["--out=--x"]).Out, Is.EqualTo("--x"), "written with '=', an option-like value is meant");
        Assert.That(() => TrainCli.Parse(["--lr", "-1"]), Throws.InstanceOf<ArgumentException>().With.Message.Contains("positive"), "a negative number is a value");
        (rc, _, err) = Run("eval", "--checkpoint", "--data", "x");
        Assert.That(rc, Is.EqualTo(2), err);
    }

    [Test]
    public void AnEmptyValueIsAnError()
    {
        // Issue 10 item 11: `--data ''` (an unset variable) trained on synthetic data.
        var (rc, _, err) = Run("train", "--data", "", "--epochs", "1");
        Assert.That(rc, Is.EqualTo(2));
        Assert.That(err, Does.Contain("--data").And.Contain("empty"));
        Assert.That(() => TrainCli.Parse(["--data="]), Throws.InstanceOf<ArgumentException>().With.Message.Contains("--data"));
        var cfg = Path.Combine(Path.GetTempPath(), $"residual-cli-{Guid.NewGuid():N}.json");
        try
        {
            File.WriteAllText(cfg, """{"data": ""}""");
            Assert.That(() => TrainCli.Parse(["--config", cfg]), Throws.InstanceOf<ArgumentException>().With.Message.Contains("--data is empty"));
        }
        finally { File.Delete(cfg); }
        Assert.That(TrainCli.Parse([]).Synthetic, Is.True, "absent --data still means synthetic data");
        (rc, _, err) = Run("eval", "--checkpoint", "");
        Assert.That(rc, Is.EqualTo(2), err);
    }

    [Test]
    public void ResponseFilesAreRead()
    {
        var rsp = Path.Combine(Path.GetTempPath(), $"residual-cli-{Guid.NewGuid():N}.rsp");
        try
        {
            File.WriteAllLines(rsp, ["--epochs 3", "--batch-size", "24"]);
            var o = TrainCli.Parse(["@" + rsp, "--lr", "0.2"]);
            Assert.That((o.Epochs, o.BatchSize, o.Lr), Is.EqualTo((3, 24, 0.2)));
        }
        finally { File.Delete(rsp); }
    }

    [Test]
    public void SwitchesAndBareResumeParse()
    {
        Assert.That(TrainCli.Parse(["--resume", "--epochs", "6"]).Resume, Is.EqualTo(""));
        Assert.That(TrainCli.Parse(["--nesterov", "--epochs", "6"]).Nesterov, Is.True);
        Assert.That(TrainCli.Parse(["--nesterov=false"]).Nesterov, Is.False);
    }
}

public class ReadmeCommandLineTests
{
    /// <summary>Every `residual train ...` command in the README's code blocks parses (each flag exists, each value is valid).</summary>
    [Test]
    public void ReadmeTrainCommandsParse()
    {
        var readme = ResidualEngine.Tests.Backends.Cuda.KernelCompileTests.FindRepoFile("README.md")
            ?? throw new IgnoreException("README.md is not next to this build (published bundle)");
        var text = File.ReadAllText(readme).Replace("\\\n", " ", StringComparison.Ordinal);
        var commands = text.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith("residual train ", StringComparison.Ordinal)).ToList();
        Assert.That(commands, Has.Count.GreaterThanOrEqualTo(3));
        foreach (var c in commands)
        {
            var words = c.Split('#')[0].Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(2).ToArray();
            Assert.DoesNotThrow(() => TrainCli.ParseGiven(words), c);
        }
    }
}
