// Where `--resume` points: a checkpoint file (its directory is the run), a run directory (its
// last checkpoint), or nothing (--out's directory, else the most recently saved run under
// runs/). The run's config.json then becomes the bottom layer of the options.
namespace ResidualEngine.Training;

public sealed record ResumeTarget(string CheckpointPath, string RunDir)
{
    public string? ConfigPath => File.Exists(Path.Combine(RunDir, "config.json")) ? Path.Combine(RunDir, "config.json") : null;

    public static ResumeTarget Locate(string resume, string? outDir, string runsRoot = "runs")
    {
        ArgumentNullException.ThrowIfNull(resume);
        string target = resume;
        if (target.Length == 0)
        {
            target = outDir ?? Latest(runsRoot)
                ?? throw new ArgumentException($"option --resume: no run to resume under '{runsRoot}/'; name a run directory or checkpoint (--resume RUNDIR)");
        }
        if (!Directory.Exists(target) && !File.Exists(target))
            throw new ArgumentException($"option --resume: '{target}' is neither a run directory nor a checkpoint file");
        var ckpt = CheckpointStore.Resolve(target, preferBest: false);
        var dir = Directory.Exists(target) ? target : Path.GetDirectoryName(Path.GetFullPath(ckpt))!;
        return new ResumeTarget(ckpt, dir);
    }

    /// <summary>The run directory under <paramref name="root"/> whose last checkpoint was written most recently.</summary>
    public static string? Latest(string root)
    {
        if (!Directory.Exists(root)) return null;
        return Directory.EnumerateDirectories(root)
            .Select(d => (Dir: d, Json: Path.Combine(d, CheckpointStore.Last + ".json")))
            .Where(x => File.Exists(x.Json))
            .OrderByDescending(x => File.GetLastWriteTimeUtc(x.Json))
            .Select(x => x.Dir)
            .FirstOrDefault();
    }
}
