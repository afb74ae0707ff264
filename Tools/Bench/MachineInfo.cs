// What machine a benchmark ran on (CPU model and cores), for result files and docs/benchmarks.md.
namespace ResidualEngine.Tools.Bench;

public static class MachineInfo
{
    /// <summary>The CPU's model name from /proc/cpuinfo (Linux), else the architecture.</summary>
    public static string CpuModel()
    {
        try
        {
            if (File.Exists("/proc/cpuinfo"))
                foreach (var line in File.ReadLines("/proc/cpuinfo"))
                    if (line.StartsWith("model name", StringComparison.Ordinal) && line.IndexOf(':', StringComparison.Ordinal) is var i and > 0)
                        return line[(i + 1)..].Trim();
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString();
    }

    public static string Describe() => $"{CpuModel()}, {Environment.ProcessorCount} logical cores, .NET {Environment.Version}";
}
