// Was this process started by an MPI launcher, and as which rank? Read from the variables the
// launchers set before MPI is initialised (so a single process never touches MPI, and the GPU can
// be chosen from the local rank first):
//   Open MPI's mpirun/mpiexec: OMPI_COMM_WORLD_{SIZE,RANK,LOCAL_RANK,LOCAL_SIZE}
//   MPICH's Hydra (also Intel MPI): PMI_SIZE, PMI_RANK, MPI_LOCALRANKID, MPI_LOCALNRANKS
// Slurm's srun is covered when it starts tasks through PMI (it then sets PMI_*).
namespace ResidualEngine.Distributed;

/// <summary>This process's place in an MPI job, as the launcher described it.</summary>
public sealed record LaunchInfo(int WorldSize, int Rank, int LocalRank, int LocalSize, string Launcher);

public static class LaunchEnvironment
{
    /// <summary>The launch this process is part of, or null when no MPI launcher started it.</summary>
    public static LaunchInfo? Detect(Func<string, string?>? variable = null)
    {
        variable ??= Environment.GetEnvironmentVariable;
        int? Int(string name) => int.TryParse(variable(name), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v : null;
        if (Int("OMPI_COMM_WORLD_SIZE") is { } size && Int("OMPI_COMM_WORLD_RANK") is { } rank)
            return Checked(new LaunchInfo(size, rank, Int("OMPI_COMM_WORLD_LOCAL_RANK") ?? 0, Int("OMPI_COMM_WORLD_LOCAL_SIZE") ?? 1, "Open MPI"));
        if (Int("PMI_SIZE") is { } psize && Int("PMI_RANK") is { } prank)
            return Checked(new LaunchInfo(psize, prank, Int("MPI_LOCALRANKID") ?? 0, Int("MPI_LOCALNRANKS") ?? 1, "PMI"));
        return null;
    }

    private static LaunchInfo Checked(LaunchInfo l) =>
        l.WorldSize >= 1 && l.Rank >= 0 && l.Rank < l.WorldSize && l.LocalRank >= 0 && l.LocalSize >= 1 && l.LocalRank < l.LocalSize ? l
            : throw new InvalidOperationException($"the {l.Launcher} launcher's variables make no sense: rank {l.Rank} of {l.WorldSize}, local rank {l.LocalRank} of {l.LocalSize}");
}
