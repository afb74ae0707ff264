// `residual info`: the machine as the engine sees it — OS and .NET, each GPU (name, compute
// capability, SMs, memory), the driver's CUDA version, and for NVRTC, cuBLAS and cuDNN their
// versions and the file each was loaded from, or why not (every path the resolver tried).
// Informational: exits 0 whether or not a GPU is present.
using System.Runtime.InteropServices;
using ResidualEngine.Backends;
using ResidualEngine.Backends.Cuda;
using ResidualEngine.Native;
using System.CommandLine;

namespace ResidualEngine.Tools.Commands;

public static class InfoCommand
{
    public static Command Create()
    {
        var verbose = new Option<bool>("--verbose") { Description = "also list the paths tried for libraries that were found" };
        var cmd = new Command("info", "Print OS, .NET, GPUs, driver and library versions, and where each CUDA library was found (or every path tried when it was not).") { verbose };
        cmd.SetAction(parse => Run(parse.GetValue(verbose)));
        return cmd;
    }

    public static int Run(bool verbose)
    {
        Console.WriteLine("System");
        Console.WriteLine($"  OS          {RuntimeInformation.OSDescription} ({RuntimeInformation.OSArchitecture})");
        Console.WriteLine($"  .NET        {RuntimeInformation.FrameworkDescription}");
        Console.WriteLine($"  CPU cores   {Environment.ProcessorCount}");

        Console.WriteLine("GPU");
        if (CudaBackend.IsAvailable(out var reason))
        {
            var (major, minor) = CudaDevices.DriverVersion();
            Console.WriteLine($"  driver      supports CUDA {major}.{minor}");
            for (int i = 0; i < CudaDevices.Count; i++) Console.WriteLine("  " + DescribeDevice(i));
        }
        else Console.WriteLine("  " + reason.Replace("\n", "\n  ", StringComparison.Ordinal));

        Console.WriteLine("Libraries");
        foreach (var lib in Enum.GetValues<CudaLibrary>())
        {
            var report = LibraryResolver.Find(lib);
            var name = LibraryResolver.DisplayName(lib);
            if (!report.Found)
            {
                Console.WriteLine($"  {name,-12}not found; paths tried:");
                foreach (var t in report.Attempts) Console.WriteLine($"      {t.Path}: {t.Outcome}");
                continue;
            }
            Console.WriteLine($"  {name,-12}{Version(lib)} at {report.LoadedPath}");
            if (verbose)
                foreach (var t in report.Attempts) Console.WriteLine($"      {t.Path}: {t.Outcome}");
        }
        Console.WriteLine($"Kernel cache  {KernelLibrary.DefaultCacheDirectory}");
        return 0;
    }

    private static string DescribeDevice(int index)
    {
        var d = CudaDevices.Get(index);
        var line = $"cuda:{index}      {d.Name}, compute capability {d.Major}.{d.Minor} ({d.Arch}), {d.MultiprocessorCount} SMs, " +
                   $"{Gib(d.TotalMemory)} GiB";
        try
        {
            var be = (CudaBackend)BackendRegistry.Get(Device.Cuda(index));
            var (free, _) = be.DeviceMemory();
            line += $" ({Gib(free)} GiB free)";
        }
        catch (CudaException e) { line += $" (could not open a context: {e.Message})"; }
        return line;
    }

    private static string Gib(long b) => (b / (double)(1L << 30)).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);

    private static string Version(CudaLibrary lib)
    {
        try
        {
            return lib switch
            {
                CudaLibrary.Driver => CudaDevices.TryInitialize(out _) ? $"CUDA {CudaDevices.DriverVersion().Major}.{CudaDevices.DriverVersion().Minor}" : "(not initialised)",
                CudaLibrary.Nvrtc => $"{KernelLibrary.CompilerVersion} (targets {Archs()})",
                CudaLibrary.Cublas => Cublas.Version() is var (ma, mi, pa) ? $"{ma}.{mi}.{pa}" : "",
                CudaLibrary.Cudnn => Cudnn.Version() is var (ma, mi, pa) ? $"{ma}.{mi}.{pa}" : "",
                _ => "",
            };
        }
        catch (Exception e) when (e is CudaException or EntryPointNotFoundException or DllNotFoundException)
        {
            return $"(version unknown: {e.Message})";
        }
    }

    private static string Archs()
    {
        var a = KernelLibrary.SupportedArchs();
        return a.Count == 0 ? "none" : $"sm_{a.Min()}..sm_{a.Max()}";
    }
}
