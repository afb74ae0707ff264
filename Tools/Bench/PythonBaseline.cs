// Finds a Python that has PyTorch and runs Tools/bench/pytorch_baseline.py with a benchmark
// configuration. The search order is RESIDUAL_PYTHON, /opt/torch/.venv/bin/python, /usr/bin/python3,
// then python3 on PATH: the first that can `import torch` wins. Every failure (no Python, no torch,
// a crashing script, unparsable output) comes back as a message, never as a crash of the caller.
using System.ComponentModel;
using System.Diagnostics;

namespace ResidualEngine.Tools.Bench;

public sealed record PythonProbe(string? Python, string? TorchVersion, IReadOnlyList<string> Tried)
{
    public bool Found => Python is not null;

    /// <summary>What was tried, for the "no PyTorch baseline" message.</summary>
    public string Explain() =>
        $"no Python with torch was found (tried: {string.Join("; ", Tried)}). " +
        "Set RESIDUAL_PYTHON to a python that can `import torch` (and torchvision) to get the PyTorch column.";
}

public static class PythonBaseline
{
    public const string EnvVar = "RESIDUAL_PYTHON";
    public const string ScriptName = "pytorch_baseline.py";

    /// <summary>The candidates in search order (the environment override first when set).</summary>
    public static IReadOnlyList<string> DefaultCandidates(Func<string, string?>? getEnv = null)
    {
        getEnv ??= Environment.GetEnvironmentVariable;
        var l = new List<string>();
        if (getEnv(EnvVar) is { Length: > 0 } env) l.Add(env);
        l.AddRange(["/opt/torch/.venv/bin/python", "/usr/bin/python3", "python3"]);
        return l;
    }

    /// <summary>Returns the first candidate that runs and imports torch, with the torch version.</summary>
    public static PythonProbe Find(IEnumerable<string> candidates, int timeoutMs = 120_000)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        var tried = new List<string>();
        foreach (var c in candidates)
        {
            if (string.IsNullOrWhiteSpace(c)) continue;
            if (c.Contains('/', StringComparison.Ordinal) && !File.Exists(c)) { tried.Add($"{c} (not found)"); continue; }
            var r = RunProcess(c, ["-c", "import torch; print(torch.__version__)"], timeoutMs);
            if (r.Error is not null) { tried.Add($"{c} ({r.Error})"); continue; }
            if (r.ExitCode != 0)
            {
                tried.Add($"{c} ({(r.StdErr.Contains("No module named", StringComparison.Ordinal) ? "no torch" : $"exit {r.ExitCode}")})");
                continue;
            }
            tried.Add($"{c} (torch {r.StdOut.Trim()})");
            return new PythonProbe(c, r.StdOut.Trim(), tried);
        }
        return new PythonProbe(null, null, tried);
    }

    /// <summary>The baseline script next to the tool (copied by the build), else in the source tree.</summary>
    public static string? FindScript()
    {
        var candidates = new[]
        {
            Path.Combine(AppContext.BaseDirectory, "bench", ScriptName),
            Path.Combine(Directory.GetCurrentDirectory(), "Tools", "bench", ScriptName),
        };
        return candidates.FirstOrDefault(File.Exists);
    }

    /// <summary>Runs the script; returns the parsed result, or null with a reason.</summary>
    public static (BenchResult? Result, string? Error, string Command) Run(string python, string script, IReadOnlyList<string> args, int timeoutMs)
    {
        ArgumentNullException.ThrowIfNull(args);
        var all = new List<string> { script };
        all.AddRange(args);
        var command = python + " " + string.Join(" ", all.Select(Quote));
        var r = RunProcess(python, all, timeoutMs);
        if (r.Error is not null) return (null, $"{python}: {r.Error}", command);
        if (r.ExitCode != 0)
            return (null, $"the PyTorch baseline exited with {r.ExitCode}: {LastLines(r.StdErr, 8)}", command);
        // The script prints exactly one JSON object; anything before it (warnings) is skipped.
        int start = r.StdOut.IndexOf('{', StringComparison.Ordinal);
        if (start < 0) return (null, $"the PyTorch baseline printed no JSON: {LastLines(r.StdOut + r.StdErr, 8)}", command);
        try { return (BenchResult.FromJson(r.StdOut[start..]), null, command); }
        catch (FormatException e) { return (null, e.Message, command); }
    }

    private static string Quote(string s) => s.Length > 0 && s.All(ch => char.IsLetterOrDigit(ch) || "-_./:=,".Contains(ch)) ? s : $"'{s.Replace("'", "'\\''", StringComparison.Ordinal)}'";

    private static string LastLines(string s, int n) =>
        string.Join(" | ", s.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).TakeLast(n));

    internal sealed record ProcessResult(int ExitCode, string StdOut, string StdErr, string? Error);

    /// <summary>Runs a program to completion (killing it, and only it, after the timeout).</summary>
    internal static ProcessResult RunProcess(string file, IReadOnlyList<string> args, int timeoutMs)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        Process p;
        try
        {
            p = Process.Start(psi) ?? throw new Win32Exception("process did not start");
        }
        catch (Win32Exception e) { return new ProcessResult(-1, "", "", $"cannot run: {e.Message}"); }
        catch (InvalidOperationException e) { return new ProcessResult(-1, "", "", $"cannot run: {e.Message}"); }
        using (p)
        {
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(timeoutMs))
            {
                try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                p.WaitForExit();
                return new ProcessResult(-1, stdout.Result, stderr.Result, $"timed out after {timeoutMs / 1000} s");
            }
            p.WaitForExit();
            return new ProcessResult(p.ExitCode, stdout.Result, stderr.Result, null);
        }
    }
}
