// Runs a Python script with Debian's torch (/usr/bin/python3; the python3 first on PATH may lack
// torch) for tests that compare with files torch writes at test time. Returns null when that
// Python or torch is missing, so callers fall back on their committed fixtures.
using System.Diagnostics;
using NUnit.Framework;

namespace ResidualEngine.Tests;

internal static class PythonTorch
{
    public const string Python = "/usr/bin/python3";
    /// <summary>A script exits with this code when an import it needs is missing.</summary>
    public const int MissingImport = 3;

    /// <summary>Runs <paramref name="script"/> with <paramref name="args"/>; null when Python or an import is missing. Fails the test on any other error.</summary>
    public static string? Run(string script, params string[] args)
    {
        if (!File.Exists(Python)) return null;
        var dir = Directory.CreateTempSubdirectory("re-py-");
        try
        {
            var path = Path.Combine(dir.FullName, "script.py");
            File.WriteAllText(path, script);
            var psi = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add(path);
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(300_000))
            {
                p.Kill(true);
                Assert.Fail("the Python script did not finish within 5 minutes");
            }
            if (p.ExitCode == MissingImport) return null;
            Assert.That(p.ExitCode, Is.Zero, $"Python script failed:\n{stderr.Result}");
            return stdout.Result;
        }
        finally
        {
            dir.Delete(true);
        }
    }
}
