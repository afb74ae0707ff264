// `residual info`: the machine as the engine sees it — OS and .NET, each GPU (name, compute
// capability, SMs, memory), the driver's CUDA version, and for NVRTC, cuBLAS and cuDNN their
// versions and the file each was loaded from, or why not (every path the resolver tried); NCCL
// likewise, and MPI (the library, its version, mpirun) for multi-process training; and the
// precision policy (TF32 switches; 16-bit types stored in 16 bits and computed in F32).
// Informational: exits 0 whether or not a GPU is present.
using System.Runtime.InteropServices;
using ResidualEngine.Backends;
using ResidualEngine.Backends.Cuda;
using ResidualEngine.Native;
using System.CommandLine;
using System.Reflection;
using System.Text.Json.Nodes;
using ResidualEngine.Tools.Cli;

namespace ResidualEngine.Tools.Commands;

public static class InfoCommand
{
    public static Command Create()
    {
        var verbose = new Option<bool>("--verbose") { Description = "also list the paths tried for libraries that were found" };
        var json = new Option<bool>("--json") { Description = "print the report as JSON (schema residual.info/1, docs/cli-json.md)" };
        var cmd = new Command("info", "Print OS, .NET, GPUs, driver and library versions, and where each CUDA library was found (or every path tried when it was not).") { verbose, json };
        cmd.SetAction(parse =>
        {
            if (!parse.GetValue(json)) return Run(parse.GetValue(verbose));
            Console.WriteLine(CliJson.Text(Json()));
            return 0;
        });
        return cmd;
    }

    /// <summary>The same report as a JSON document (every path tried is always listed).</summary>
    public static JsonObject Json()
    {
        var j = CliJson.Document("info");
        j["residual_version"] = typeof(InfoCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        j["os"] = RuntimeInformation.OSDescription;
        j["architecture"] = RuntimeInformation.OSArchitecture.ToString().ToLowerInvariant();
        j["dotnet"] = RuntimeInformation.FrameworkDescription;
        j["cpu_cores"] = Environment.ProcessorCount;
        var gpu = new JsonObject();
        bool available = CudaBackend.IsAvailable(out var reason);
        gpu["available"] = available;
        gpu["reason"] = available ? null : reason;
        var devices = new JsonArray();
        if (available)
        {
            var (major, minor) = CudaDevices.DriverVersion();
            gpu["driver_cuda"] = $"{major}.{minor}";
            for (int i = 0; i < CudaDevices.Count; i++)
            {
                var d = CudaDevices.Get(i);
                long? free = null;
                try { free = ((CudaBackend)BackendRegistry.Get(Device.Cuda(i))).DeviceMemory().Free; }
                catch (CudaException) { }
                devices.Add(new JsonObject
                {
                    ["index"] = i, ["name"] = d.Name, ["arch"] = d.Arch, ["compute_capability"] = $"{d.Major}.{d.Minor}",
                    ["multiprocessors"] = d.MultiprocessorCount, ["total_memory_bytes"] = d.TotalMemory, ["free_memory_bytes"] = free,
                });
            }
        }
        else gpu["driver_cuda"] = null;
        gpu["devices"] = devices;
        j["gpu"] = gpu;
        var libs = new JsonArray();
        foreach (var lib in Enum.GetValues<CudaLibrary>())
        {
            var report = LibraryResolver.Find(lib);
            libs.Add(new JsonObject
            {
                ["name"] = LibraryResolver.DisplayName(lib),
                ["found"] = report.Found,
                ["version"] = report.Found ? Version(lib) : null,
                ["path"] = report.LoadedPath,
                ["tried"] = new JsonArray(report.Attempts.Select(t => (JsonNode?)new JsonObject { ["path"] = t.Path, ["outcome"] = t.Outcome.ToString() }).ToArray()),
            });
        }
        j["libraries"] = libs;
        var mpi = MpiLibrary.Find();
        j["mpi"] = new JsonObject
        {
            ["found"] = mpi.Found,
            ["version"] = mpi.Found ? MpiVersion() : null,
            ["path"] = mpi.LoadedPath,
            ["mpirun"] = TrainLauncher.FindMpirun(),
            ["tried"] = new JsonArray(mpi.Attempts.Select(t => (JsonNode?)new JsonObject { ["path"] = t.Path, ["outcome"] = t.Outcome }).ToArray()),
        };
        j["kernel_cache"] = KernelLibrary.DefaultCacheDirectory;
        var (conv, mm) = Tf32Switches();
        j["precision"] = new JsonObject
        {
            ["tf32_convolutions"] = conv,
            ["tf32_matmul"] = mm,
            ["policy"] = Tf32.Describe(conv, mm),
            ["sixteen_bit"] = SixteenBit,
        };
        return j;
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
        Console.WriteLine("Multi-process");
        var mpi = MpiLibrary.Find();
        if (mpi.Found)
        {
            Console.WriteLine($"  {"MPI",-12}{MpiVersion()} at {mpi.LoadedPath}");
            if (verbose) foreach (var t in mpi.Attempts) Console.WriteLine($"      {t.Path}: {t.Outcome}");
        }
        else
        {
            Console.WriteLine($"  {"MPI",-12}not found (needed for --nproc and mpirun; apt-get install openmpi-bin libopenmpi-dev); paths tried:");
            foreach (var t in mpi.Attempts) Console.WriteLine($"      {t.Path}: {t.Outcome}");
        }
        Console.WriteLine($"  {"mpirun",-12}{TrainLauncher.FindMpirun() ?? "not found (residual train --nproc needs it)"}");
        Console.WriteLine($"Kernel cache  {KernelLibrary.DefaultCacheDirectory}");
        var (conv, mm) = Tf32Switches();
        Console.WriteLine("Precision");
        Console.WriteLine($"  {Tf32.Describe(conv, mm)}; `--precision fp32` turns both off, tf32/bf16/fp16 keep this");
        Console.WriteLine($"  {SixteenBit}");
        return 0;
    }

    private const string SixteenBit = "BF16/F16: stored in 16 bits, computed in F32 (cuDNN PSEUDO_BFLOAT16/PSEUDO_HALF convolutions, " +
        "cublasGemmEx with CUBLAS_COMPUTE_32F, our kernels convert at load/store; the CPU converts around its F32 kernels)";

    /// <summary>The TF32 switches of cuda:0's backend when a GPU answers, else the defaults a backend starts with.</summary>
    private static (bool Conv, bool Matmul) Tf32Switches()
    {
        if (CudaBackend.IsAvailable(out _))
        {
            try
            {
                var be = (CudaBackend)BackendRegistry.Get(Device.Cuda());
                return (be.AllowTf32Convolutions, be.AllowTf32Matmul);
            }
            catch (CudaException) { }
        }
        return (CudaBackend.DefaultTf32Convolutions, CudaBackend.DefaultTf32Matmul);
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
                CudaLibrary.Nccl => Nccl.Version() is var (ma, mi, pa) ? $"{ma}.{mi}.{pa}" : "",
                _ => "",
            };
        }
        catch (Exception e) when (e is CudaException or EntryPointNotFoundException or DllNotFoundException or NcclException)
        {
            return $"(version unknown: {e.Message})";
        }
    }

    /// <summary>MPI_Get_library_version's first line (callable before MPI is initialised).</summary>
    private static string MpiVersion()
    {
        try { return Mpi.LibraryVersion(); }
        catch (Exception e) when (e is MpiException or EntryPointNotFoundException or DllNotFoundException) { return $"(version unknown: {e.Message})"; }
    }

    private static string Archs()
    {
        var a = KernelLibrary.SupportedArchs();
        return a.Count == 0 ? "none" : $"sm_{a.Min()}..sm_{a.Max()}";
    }
}
