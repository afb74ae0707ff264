// Where `--resume` points: a checkpoint file (its directory is the run), a run directory (its
// newest intact checkpoint: last, else previous or best, saying which), or nothing (--out's
// directory, else the most recently saved run under runs/). Finding the run directory and
// choosing its checkpoint are two steps, so that the caller can lock the directory in between.
// The checkpoint carries the options it was made with; config.json (the bottom layer of the
// resumed run's options) is put back to them when a crash left it out of step.
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ResidualEngine.Training;

public sealed record ResumeTarget(string CheckpointPath, string RunDir, CheckpointInfo Info, string? Note)
{
    public string? ConfigPath => File.Exists(Path.Combine(RunDir, "config.json")) ? Path.Combine(RunDir, "config.json") : null;

    /// <summary>The run directory and, when a file was named, that checkpoint file.</summary>
    public static (string RunDir, string? File) FindRun(string resume, string? outDir, string runsRoot = "runs")
    {
        ArgumentNullException.ThrowIfNull(resume);
        string target = resume;
        if (target.Length == 0)
        {
            target = outDir ?? Latest(runsRoot)
                ?? throw new ArgumentException($"option --resume: no run to resume under '{runsRoot}/'; name a run directory or checkpoint (--resume RUNDIR)");
        }
        if (Directory.Exists(target)) return (target, null);
        if (!File.Exists(target))
            throw new ArgumentException($"option --resume: '{target}' is neither a run directory nor a checkpoint file");
        var file = CheckpointStore.Resolve(target, preferBest: false);
        return (Path.GetDirectoryName(Path.GetFullPath(file))!, file);
    }

    /// <summary>Chooses and verifies the checkpoint: the named file, or the run directory's newest intact one.</summary>
    public static ResumeTarget Choose(string runDir, string? file)
    {
        if (file is not null)
        {
            CheckpointInfo? info;
            try
            {
                info = CheckpointStore.LoadInfo(file);
            }
            catch (CheckpointException e)
            {
                throw new CheckpointException($"{e.Message}; to resume from the newest intact checkpoint of the run, use --resume {runDir}");
            }
            return new ResumeTarget(file, runDir, info ?? throw new CheckpointException(
                $"'{file}' holds weights only (no training state), so it cannot be resumed; use `residual eval` to evaluate it, or --weights to start a run from it"), null);
        }
        var (path, chosen, note) = CheckpointStore.FindForResume(runDir);
        return new ResumeTarget(path, runDir, chosen, note);
    }

    /// <summary>
    /// Puts config.json back to the options the checkpoint was made with when it is missing, or older
    /// than the checkpoint and different (a crash between saving a checkpoint and writing config.json).
    /// A config.json edited after the checkpoint is left as it is. Returns what it did, or null.
    /// </summary>
    public string? RestoreConfig()
    {
        if (Info.Config is null) return null;
        var path = Path.Combine(RunDir, "config.json");
        if (File.Exists(path))
        {
            if (File.GetLastWriteTimeUtc(path) >= Info.SavedAt.UtcDateTime) return null;
            try
            {
                if (JsonNode.DeepEquals(JsonNode.Parse(IO.SafeFile.ReadAllText(path, "run config")), Info.Config)) return null;
            }
            catch (Exception e) when (e is JsonException or IOException)
            {
                // unreadable: rewritten below
            }
        }
        AtomicFile.WriteAllText(path, Info.Config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        return $"config.json did not hold the options {Path.GetFileName(CheckpointPath)} was made with; it was rewritten from the checkpoint";
    }

    /// <summary>The run directory under <paramref name="root"/> whose checkpoint was written most recently.</summary>
    public static string? Latest(string root)
    {
        if (!Directory.Exists(root)) return null;
        return Directory.EnumerateDirectories(root)
            .Select(d => (Dir: d, Ckpt: Path.Combine(d, CheckpointStore.Last + ".safetensors")))
            .Where(x => File.Exists(x.Ckpt))
            .OrderByDescending(x => File.GetLastWriteTimeUtc(x.Ckpt))
            .Select(x => x.Dir)
            .FirstOrDefault();
    }
}
