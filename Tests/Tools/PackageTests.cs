// `dotnet pack` as a user would run it: packages for the engine, data, models and training
// libraries with real metadata (description, licence expression, readme, repository, XML docs,
// the one version of Directory.Build.props), and `residual` as a .NET tool that installs from a
// local folder, offline (a NuGet.config with only that folder, a private package cache), and
// runs: `residual models` lists the zoo and `residual --version` prints that version.
using System.Diagnostics;
using System.IO.Compression;
using System.Xml.Linq;
using NUnit.Framework;

namespace ResidualEngine.Tests.Tools;

[NonParallelizable]
public class PackageTests
{
#if DEBUG
    private const string Configuration = "Debug";
#else
    private const string Configuration = "Release";
#endif

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "ResidualEngine.sln"))) return d.FullName;
        Assert.Fail("the repository root (ResidualEngine.sln) is not above the test assembly; this test packs the sources");
        return "";
    }

    private static (int Code, string Out) Run(string exe, string workDir, IReadOnlyDictionary<string, string>? env, params string[] args)
    {
        var psi = new ProcessStartInfo(exe) { WorkingDirectory = workDir, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(600_000))
        {
            p.Kill(true);
            Assert.Fail($"{exe} {string.Join(" ", args)} did not finish in 10 minutes");
        }
        return (p.ExitCode, o.Result + e.Result);
    }

    private static string Dotnet => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h && File.Exists(h) ? h : "dotnet";

    [Test]
    public void PackagesCarryTheirMetadataAndTheToolInstallsOfflineAndRuns()
    {
        var root = RepoRoot();
        var version = XDocument.Load(Path.Combine(root, "Directory.Build.props")).Descendants("Version").Single().Value;
        var work = Directory.CreateTempSubdirectory("pack-").FullName;
        try
        {
            var feed = Path.Combine(work, "feed");
            var pack = Run(Dotnet, root, null, "pack", "ResidualEngine.sln", "-c", Configuration, "--no-build", "-o", feed);
            Assert.That(pack.Code, Is.Zero, pack.Out);

            string[] libraries = ["ResidualEngine", "ResidualEngine.Data", "ResidualEngine.Models", "ResidualEngine.Training"];
            foreach (var id in libraries.Append("ResidualEngine.Tool"))
            {
                var nupkg = Path.Combine(feed, $"{id}.{version}.nupkg");
                Assert.That(File.Exists(nupkg), Is.True, $"{id} was packed");
                using var zip = ZipFile.OpenRead(nupkg);
                var nuspec = XDocument.Load(zip.GetEntry($"{id}.nuspec")!.Open());
                string Meta(string name) => nuspec.Descendants().FirstOrDefault(e => e.Name.LocalName == name)?.Value ?? "";
                Assert.That(Meta("version"), Is.EqualTo(version), id);
                Assert.That(Meta("description"), Has.Length.GreaterThan(60).And.Not.Contains("Package Description"), id);
                Assert.That(nuspec.Descendants().Single(e => e.Name.LocalName == "license").Attribute("type")?.Value, Is.EqualTo("expression"), id);
                Assert.That(Meta("license"), Is.EqualTo("MIT"), id);
                Assert.That(Meta("readme"), Is.EqualTo("README.md"), id);
                Assert.That(zip.GetEntry("README.md"), Is.Not.Null, $"{id} carries the README");
                Assert.That(nuspec.Descendants().Single(e => e.Name.LocalName == "repository").Attribute("type")?.Value, Is.EqualTo("git"), id);
                if (id != "ResidualEngine.Tool")
                {
                    Assert.That(zip.GetEntry($"lib/net10.0/{id}.dll"), Is.Not.Null, id);
                    Assert.That(zip.GetEntry($"lib/net10.0/{id}.xml"), Is.Not.Null, $"{id} ships its XML documentation");
                }
                else
                {
                    Assert.That(nuspec.Descendants().Any(e => e.Name.LocalName == "packageType" && e.Attribute("name")?.Value == "DotnetTool"), Is.True);
                    Assert.That(zip.Entries.Where(e => e.FullName.EndsWith(".pdb", StringComparison.Ordinal) && e.FullName.Contains("/runtimes/", StringComparison.Ordinal)), Is.Empty,
                        "no native debug symbols in the tool");
                }
            }

            // Install offline from the folder alone, into a private tool path and package cache.
            var config = Path.Combine(work, "nuget.config");
            File.WriteAllText(config, $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration><packageSources><clear /><add key="local" value="{feed}" /></packageSources></configuration>
                """);
            var tools = Path.Combine(work, "tools");
            var env = new Dictionary<string, string> { ["NUGET_PACKAGES"] = Path.Combine(work, "packages") };
            var install = Run(Dotnet, work, env, "tool", "install", "ResidualEngine.Tool", "--tool-path", tools, "--configfile", config, "--version", version);
            Assert.That(install.Code, Is.Zero, install.Out);

            var exe = Path.Combine(tools, OperatingSystem.IsWindows() ? "residual.exe" : "residual");
            var models = Run(exe, work, null, "models");
            Assert.That(models.Code, Is.Zero, models.Out);
            Assert.That(models.Out, Does.Contain("resnet50").And.Contain("resnet20").And.Contain("resnext50_32x4d"));
            var v = Run(exe, work, null, "--version");
            Assert.That(v.Code, Is.Zero, v.Out);
            Assert.That(v.Out.Trim(), Does.StartWith(version), "residual --version prints the version of Directory.Build.props");
        }
        finally
        {
            Directory.Delete(work, true);
        }
    }
}
