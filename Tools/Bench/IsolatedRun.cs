// Runs `residual bench` for one configuration in a fresh process and reads its JSON back. The
// compare command measures ours this way, as it measures PyTorch: each run starts from a clean
// process, so its peak resident memory is its own (a second run in the same process would reuse
// the heap the first one grew and report almost nothing).
using System.Globalization;

namespace ResidualEngine.Tools.Bench;

public static class IsolatedRun
{
    /// <summary>The program and leading arguments that start this tool again.</summary>
    public static (string File, IReadOnlyList<string> Args) SelfCommand()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "residual.dll");
        var host = Environment.ProcessPath;
        if (host is not null && Path.GetFileNameWithoutExtension(host).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
            return (host, [dll]);
        var apphost = Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "residual.exe" : "residual");
        if (File.Exists(apphost)) return (apphost, []);
        return ("dotnet", [dll]);
    }

    /// <summary>Benchmarks <paramref name="cfg"/> in a child process; throws InvalidOperationException with its error output when it fails.</summary>
    public static BenchResult Run(BenchConfig cfg, int timeoutMs)
    {
        ArgumentNullException.ThrowIfNull(cfg);
        var json = Path.Combine(Path.GetTempPath(), $"residual-bench-{Environment.ProcessId}-{Guid.NewGuid():N}.json");
        try
        {
            var (file, lead) = SelfCommand();
            var args = new List<string>(lead) { "bench" };
            args.AddRange(cfg.ToArgs());
            args.AddRange(["--json", json]);
            var r = PythonBaseline.RunProcess(file, args, timeoutMs);
            if (r.Error is not null) throw new InvalidOperationException($"could not run `{file} {string.Join(" ", args)}`: {r.Error}");
            if (r.ExitCode != 0 || !File.Exists(json))
                throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                    $"`residual bench` exited with {r.ExitCode}: {string.Join(" | ", (r.StdErr + r.StdOut).Split('\n', StringSplitOptions.RemoveEmptyEntries).TakeLast(6))}"));
            return BenchResult.FromJson(File.ReadAllText(json));
        }
        finally
        {
            File.Delete(json);
        }
    }
}
