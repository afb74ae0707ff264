// build.sh's behaviour, without ever running a nested build: no verb and unknown verbs exit 2
// with the verb list on stderr and nothing on stdout; `help` prints the list and nothing else;
// a compiler error in `train` and `bench` is shown and stops the script (a stand-in `dotnet`
// that fails like the compiler is put first on PATH). build.ps1 must offer the same verbs and
// exit codes; it is run the same way where PowerShell is installed.
using System.Diagnostics;
using System.Text.RegularExpressions;
using NUnit.Framework;
using ResidualEngine.Tests.Backends.Cuda;

namespace ResidualEngine.Tests.Tools;

public partial class BuildScriptTests
{
    private static string Script(string name) =>
        KernelCompileTests.FindRepoFile(name) ?? throw new IgnoreException($"{name} is not next to this build (published bundle)");

    private static (int Rc, string Out, string Err) Run(string program, IEnumerable<string> args, string? pathFirst = null)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (pathFirst is not null) psi.Environment["PATH"] = pathFirst + ":" + Environment.GetEnvironmentVariable("PATH");
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output, err.Result);
    }

    private static IEnumerable<(string Program, string[] Prefix)> Shells()
    {
        yield return ("bash", [Script("build.sh")]);
        if (OnPath("pwsh")) yield return ("pwsh", ["-NoProfile", "-File", Script("build.ps1")]);
    }

    private static bool OnPath(string exe) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => d.Length > 0 && File.Exists(Path.Combine(d, exe)));

    private static List<string> ShVerbs() =>
        VerbList().Matches(File.ReadAllText(Script("build.sh"))).Select(m => m.Groups[1].Value).ToList();

    [GeneratedRegex(@"^#\s+\./build\.(?:sh|ps1) ([a-z-]+)", RegexOptions.Multiline)]
    private static partial Regex VerbList();

    [Test]
    public void NoVerbAndUnknownVerbsAreUsageErrors()
    {
        foreach (var (sh, prefix) in Shells())
        {
            var (rc, output, err) = Run(sh, [.. prefix, "nosuchverb"]);
            Assert.That((rc, output), Is.EqualTo((2, "")), sh);
            Assert.That(err, Does.Contain("unknown verb 'nosuchverb'").And.Contain("test [filter]"), sh);
            (rc, output, err) = Run(sh, prefix);
            Assert.That((rc, output), Is.EqualTo((2, "")), $"{sh} without a verb");
            Assert.That(err, Does.Contain("which verb").And.Not.Contain("set -euo").And.Not.Contain("param("), sh);
        }
    }

    [Test]
    public void HelpListsEveryVerbAndNothingElse()
    {
        var verbs = ShVerbs();
        Assert.That(verbs, Is.SupersetOf(new[] { "build", "test", "train", "bench", "publish", "help" }));
        foreach (var (sh, prefix) in Shells())
        {
            var (rc, output, err) = Run(sh, [.. prefix, "help"]);
            Assert.That((rc, err), Is.EqualTo((0, "")), sh);
            foreach (var v in verbs) Assert.That(output, Does.Contain(" " + v), sh);
            Assert.That(output, Does.Not.Contain("set -euo").And.Not.Contain("param(").And.Not.Contain("#"), sh);
        }
    }

    [Test]
    public void BuildErrorsAreShownAndStopTheScript()
    {
        var fake = Directory.CreateTempSubdirectory("fake-dotnet-").FullName;
        try
        {
            var dotnet = Path.Combine(fake, "dotnet");
            File.WriteAllText(dotnet, "#!/bin/sh\necho \"Foo.cs(1,1): error CS0246: planted compiler error\"\nexit 1\n");
            File.SetUnixFileMode(dotnet, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            foreach (var (sh, prefix) in Shells())
                foreach (var verb in new[] { "train", "bench" })
                {
                    var (rc, output, err) = Run(sh, [.. prefix, verb], pathFirst: fake);
                    Assert.That(rc, Is.EqualTo(1), $"{sh} {verb}");
                    Assert.That(output + err, Does.Contain("planted compiler error"), $"{sh} {verb} shows the compiler's output");
                }
        }
        finally { Directory.Delete(fake, recursive: true); }
    }

    [Test]
    public void BuildPs1OffersTheSameVerbsAndExitCodes()
    {
        var ps1 = File.ReadAllText(Script("build.ps1"));
        var psVerbs = VerbList().Matches(ps1).Select(m => m.Groups[1].Value).ToList();
        Assert.That(psVerbs, Is.EqualTo(ShVerbs()), "the same verbs, listed in the same order");
        foreach (var v in ShVerbs().Where(v => v != "help")) Assert.That(ps1, Does.Contain($"\"{v}\""), $"build.ps1 handles {v}");
        Assert.That(ps1, Does.Contain("unknown verb").And.Contain("exit 2"));
        Assert.That(ps1, Does.Not.Contain("Out-Null"), "build output is never thrown away");
        Assert.That(File.ReadAllText(Script("build.sh")), Does.Not.Contain("-nologo >/dev/null"), "build output is never thrown away");
    }
}
