// How a rank of a data-parallel job fails: it prints why, naming itself, and ends the whole job
// (MPI_Abort), so no other rank waits forever in a collective for it. The job's exit code is the
// failing rank's (mpirun passes it on). `residual train` and library users' own rank programs use
// the same path.
using ResidualEngine.Distributed;

namespace ResidualEngine.Training.Distributed;

public static class DistributedJob
{
    /// <summary>Writes "<paramref name="program"/>: rank R of N: error: message" to stderr and ends every rank with <paramref name="exitCode"/>. Does not return.</summary>
    public static void Fail(ProcessGroup group, string program, Exception error, int exitCode = 1)
    {
        ArgumentNullException.ThrowIfNull(group);
        ArgumentNullException.ThrowIfNull(error);
        Console.Error.WriteLine($"{program}: rank {group.Rank} of {group.Size}: error: {OneLine(error.Message)}");
        if (Environment.GetEnvironmentVariable("RESIDUAL_VERBOSE") is "1") Console.Error.WriteLine(error);
        Console.Error.Flush();
        group.Abort(exitCode);
    }

    /// <summary>Runs <paramref name="rank"/> on this process's rank; an exception ends the job through <see cref="Fail"/>.</summary>
    public static int Run(ProcessGroup group, string program, Func<int> rank)
    {
        ArgumentNullException.ThrowIfNull(group);
        ArgumentNullException.ThrowIfNull(rank);
        try
        {
            return rank();
        }
        catch (Exception e)
        {
            Fail(group, program, e, e is ArgumentException ? 2 : 1);
            throw; // not reached
        }
    }

    private static string OneLine(string m) => string.Join(" ", m.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
