// Runs programs the multi-process tests need — mpirun with the test worker, or the `residual`
// tool (its own --nproc launcher) — from the test's output folder, with a generous wall-clock
// limit that only guards against a hang (nothing asserts on time). When Open MPI is not
// installed the tests are skipped, loudly, with the reason and how to install it; that is the
// only reason they skip.
using System.Diagnostics;
using System.Text;
using NUnit.Framework;
using ResidualEngine.Native;

namespace ResidualEngine.Tests.Distributed;

internal sealed record JobResult(int ExitCode, string Output)
{
    public override string ToString() => $"exit code {ExitCode}; output:\n{Output}";
}

internal static class MpiJob
{
    /// <summary>Longest a job may run before it is considered hung (the machine may be heavily loaded).</summary>
    public static readonly TimeSpan HangLimit = TimeSpan.FromMinutes(6);

    /// <summary>Skips the calling test, loudly, when mpirun or the MPI library is missing.</summary>
    public static string RequireMpirun()
    {
        var mpirun = ResidualEngine.Tools.Commands.TrainLauncher.FindMpirun();
        string? why = mpirun is null ? "mpirun is not on PATH"
            : !MpiLibrary.Find().Found ? MpiLibrary.Find().Describe()
            : null;
        if (why is null) return mpirun!;
        var message = $"SKIPPED: Open MPI is not installed ({why}); install openmpi-bin and libopenmpi-dev (./build.sh test does so when run as root)";
        TestContext.Progress.WriteLine(message);
        Assert.Ignore(message);
        return "";
    }

    public static string TestDir => AppContext.BaseDirectory;

    /// <summary>dotnet and the .dll of a program built beside the tests (residual, residual-dist-worker).</summary>
    public static string[] Program(string name)
    {
        var dll = Path.Combine(TestDir, name + ".dll");
        if (!File.Exists(dll)) Assert.Fail($"{dll} is missing: it is built with the tests (Tests.csproj references it)");
        return [Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet", dll];
    }

    /// <summary>Open MPI's mpirun for <paramref name="np"/> local ranks of <paramref name="command"/>.</summary>
    public static string[] Mpirun(int np, params string[] command) =>
        [RequireMpirun(), .. ResidualEngine.Tools.Commands.TrainLauncher.MpirunArguments(np, command, openMpi: true, root: Environment.UserName == "root")];

    /// <summary>Starts a program (output collected from stdout and stderr together).</summary>
    public static RunningJob Start(string[] command, string workDir)
    {
        var psi = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = workDir };
        foreach (var a in command.Skip(1)) psi.ArgumentList.Add(a);
        psi.Environment["TERM"] = "dumb";
        psi.Environment.Remove("OMPI_COMM_WORLD_SIZE"); // never a rank of an outer job
        return new RunningJob(Process.Start(psi) ?? throw new InvalidOperationException($"could not start {command[0]}"));
    }

    public static JobResult Run(string[] command, string workDir)
    {
        using var job = Start(command, workDir);
        return job.Wait();
    }
}

internal sealed class RunningJob : IDisposable
{
    private readonly StringBuilder _out = new();
    private readonly Process _p;

    public RunningJob(Process p)
    {
        _p = p;
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_out) _out.Append(e.Data).Append('\n'); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_out) _out.Append(e.Data).Append('\n'); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
    }

    public int Pid => _p.Id;

    public bool HasExited => _p.HasExited;

    public string OutputSoFar { get { lock (_out) return _out.ToString(); } }

    /// <summary>Waits until the output contains <paramref name="text"/> (false if the program ended first).</summary>
    public bool WaitForOutput(string text)
    {
        var limit = Stopwatch.StartNew();
        while (!OutputSoFar.Contains(text, StringComparison.Ordinal))
        {
            if (_p.HasExited || limit.Elapsed > MpiJob.HangLimit) return false;
            Thread.Sleep(100);
        }
        return true;
    }

    public JobResult Wait()
    {
        if (!_p.WaitForExit(MpiJob.HangLimit))
        {
            _p.Kill(entireProcessTree: true);
            _p.WaitForExit();
            Assert.Fail($"the job did not end within {MpiJob.HangLimit.TotalMinutes} minutes (hung?); output so far:\n{OutputSoFar}");
        }
        _p.WaitForExit(); // drains the output
        return new JobResult(_p.ExitCode, OutputSoFar);
    }

    public void Dispose()
    {
        if (!_p.HasExited) _p.Kill(entireProcessTree: true);
        _p.Dispose();
    }
}
