// `residual train --nproc N`: starts N ranks of this same command on this machine through
// mpirun (Open MPI's by default; RESIDUAL_MPIRUN names another) and waits for them. The ranks get
// the command line without --nproc; mpirun's exit code is the launcher's (0, 130 after a stop,
// the failing rank's code after an error). Open MPI gets --oversubscribe (more ranks than cores is
// allowed, and its progress engine then yields the core) and --bind-to none (each rank uses
// cores / N threads, set by the trainer), and runs as root only when we are root.
//
// Stopping: a first SIGTERM or Ctrl-C to the launcher is passed on as SIGUSR1 to mpirun, which
// forwards it to every rank; the ranks agree on the step to stop after, rank 0 writes the
// checkpoint once, and all exit with 130. (SIGTERM straight to Open MPI's mpirun kills the ranks
// within a second, too soon for a checkpoint: send it SIGUSR1 instead.) A second signal
// terminates mpirun, and with it the ranks, at once.
using System.Diagnostics;
using System.Runtime.InteropServices;
using ResidualEngine.Tools.Cli;

namespace ResidualEngine.Tools.Commands;

public static partial class TrainLauncher
{
    /// <summary>Linux's SIGUSR1 (what Open MPI's mpirun forwards to every rank).</summary>
    internal const int SigUsr1 = 10;

    /// <summary>The command line each rank runs: this program (through dotnet when it is a .dll), the verb
    /// (<c>train</c>, or <c>bench parallel</c>) and its words minus --nproc.</summary>
    public static IReadOnlyList<string> RankCommand(IReadOnlyList<string> trainArgs, params string[] verb)
    {
        ArgumentNullException.ThrowIfNull(trainArgs);
        if (verb.Length == 0) verb = ["train"];
        var self = new List<string>();
        var process = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell which program is running (no process path)");
        var entry = System.Reflection.Assembly.GetEntryAssembly()?.Location;
        if (Path.GetFileNameWithoutExtension(process).Equals("dotnet", StringComparison.OrdinalIgnoreCase) && !string.IsNullOrEmpty(entry))
        {
            self.Add(process);
            self.Add(entry);
        }
        else self.Add(process);
        self.AddRange(verb);
        self.AddRange(WithoutNproc(trainArgs));
        return self;
    }

    /// <summary>The words with every --nproc N (or --nproc=N) taken out.</summary>
    public static IReadOnlyList<string> WithoutNproc(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var kept = new List<string>();
        for (int i = 0; i < args.Count; i++)
        {
            if (args[i] == "--nproc") { i++; continue; }
            if (args[i].StartsWith("--nproc=", StringComparison.Ordinal)) continue;
            kept.Add(args[i]);
        }
        return kept;
    }

    /// <summary>The mpirun to use: RESIDUAL_MPIRUN, else mpirun (or mpiexec) on PATH; null when there is none.</summary>
    public static string? FindMpirun()
    {
        var own = Environment.GetEnvironmentVariable("RESIDUAL_MPIRUN");
        if (!string.IsNullOrWhiteSpace(own)) return own;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            foreach (var name in new[] { "mpirun", "mpiexec" })
                if (File.Exists(Path.Combine(dir, name))) return Path.Combine(dir, name);
        return null;
    }

    /// <summary>mpirun's arguments for <paramref name="nproc"/> local ranks of <paramref name="rankCommand"/>.</summary>
    public static IReadOnlyList<string> MpirunArguments(int nproc, IReadOnlyList<string> rankCommand, bool openMpi, bool root)
    {
        var a = new List<string> { "-np", nproc.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        if (openMpi)
        {
            a.AddRange(["--oversubscribe", "--bind-to", "none"]);
            if (root) a.Add("--allow-run-as-root");
        }
        a.AddRange(rankCommand);
        return a;
    }

    /// <summary>Runs the ranks and returns mpirun's exit code (130 when stopped by a signal).</summary>
    public static int Run(int nproc, IReadOnlyList<string> trainArgs, TextWriter error, params string[] verb)
    {
        ArgumentNullException.ThrowIfNull(error);
        if (Distributed.LaunchEnvironment.Detect() is { } l)
            throw new UsageException($"option --nproc: this process is already rank {l.Rank} of {l.WorldSize} started by {l.Launcher}; leave --nproc out under mpirun");
        var mpirun = FindMpirun() ?? throw new UsageException(
            "option --nproc starts the processes through MPI's mpirun, which is not installed (Debian/Ubuntu: apt-get install openmpi-bin; " +
            "or set RESIDUAL_MPIRUN); ./build.sh test installs it when it runs as root");
        bool openMpi = IsOpenMpi(mpirun);
        var psi = new ProcessStartInfo(mpirun) { UseShellExecute = false };
        foreach (var w in MpirunArguments(nproc, RankCommand(trainArgs, verb), openMpi, geteuid() == 0)) psi.ArgumentList.Add(w);
        // The ranks' stdout is mpirun's terminal or pipe: a plain terminal keeps .NET from sending mode switches to it.
        psi.Environment["TERM"] = "dumb";
        var who = "residual " + string.Join(" ", verb.Length == 0 ? ["train"] : verb);
        error.WriteLine($"{who}: starting {nproc} processes: {mpirun} {string.Join(" ", psi.ArgumentList)}");
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {mpirun}");
        int signals = 0;
        void OnSignal(PosixSignalContext ctx)
        {
            ctx.Cancel = true;
            if (Interlocked.Increment(ref signals) == 1)
            {
                error.WriteLine($"\n{who}: {ctx.Signal}: asking the {nproc} processes to stop after this step and save a checkpoint ({ctx.Signal} again to end them at once)");
                kill(p.Id, SigUsr1);
            }
            else kill(p.Id, 15); // SIGTERM: Open MPI ends the job
        }
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        p.WaitForExit();
        return signals > 0 && p.ExitCode != 0 ? CliApp.Interrupted : p.ExitCode;
    }

    private static bool IsOpenMpi(string mpirun)
    {
        try
        {
            var psi = new ProcessStartInfo(mpirun, "--version") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            using var p = Process.Start(psi);
            if (p is null) return true;
            var text = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
            p.WaitForExit();
            return text.Contains("Open MPI", StringComparison.OrdinalIgnoreCase) || text.Contains("OpenRTE", StringComparison.OrdinalIgnoreCase);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            throw new UsageException($"option --nproc: cannot run {mpirun}");
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);

    [LibraryImport("libc")]
    private static partial uint geteuid();
}
