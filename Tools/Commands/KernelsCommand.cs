// `residual kernels`: list the embedded CUDA kernels, or compile-check them with NVRTC for one or
// more architectures (no GPU needed). `check` prints OK/FAILED per file with the compiler log and
// exits 1 on any failure, 3 when NVRTC cannot be found (with every path the resolver tried).
using System.Text.RegularExpressions;
using ResidualEngine.Backends.Cuda;
using ResidualEngine.Native;
using ResidualEngine.Tools.Cli;

namespace ResidualEngine.Tools.Commands;

public static partial class KernelsCommand
{
    private const string Usage = """
        usage: residual kernels list
               residual kernels check [--arch sm_90]...   (default: the GPU's arch, else sm_80 and sm_90)

        Kernels are the Kernels/*.cu files embedded in the engine; NVRTC compiles them at run time.
        """;

    public static int Run(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var a = new Args(args);
        if (a.Help || a.Positional.Count == 0)
        {
            Console.WriteLine(Usage);
            return a.Help ? 0 : 2;
        }
        switch (a.Positional[0])
        {
            case "list":
                a.RejectUnknown();
                return List();
            case "check":
                var archs = a.Strings("arch").ToList();
                a.RejectUnknown();
                return Check(archs);
            default:
                Console.Error.WriteLine($"residual kernels: unknown subcommand '{a.Positional[0]}'\n\n{Usage}");
                return 2;
        }
    }

    private static int List()
    {
        foreach (var src in KernelLibrary.Sources)
        {
            var names = CudaKernels.NamesIn(src.FileName).ToList();
            if (names.Count == 0) names = DeclaredNames(src.Text).ToList(); // a user file: what it declares
            Console.WriteLine($"{src.FileName}  ({src.Text.Split('\n').Length} lines)");
            foreach (var n in names) Console.WriteLine($"  {n}");
        }
        foreach (var h in KernelLibrary.Headers) Console.WriteLine($"{h.FileName}  (header)");
        return 0;
    }

    private static IEnumerable<string> DeclaredNames(string text) =>
        Declared().Matches(text).Select(m => m.Groups[1].Value).Distinct();

    [GeneratedRegex(@"extern\s+""C""\s+__global__\s+void\s+(\w+)\s*\(")]
    private static partial Regex Declared();

    private static int Check(List<string> archs)
    {
        string nvrtc;
        try
        {
            nvrtc = KernelLibrary.CompilerVersion;
        }
        catch (NativeLibraryNotFoundException e)
        {
            Console.Error.WriteLine("residual kernels check: NVRTC (libnvrtc) was not found, so kernels cannot be compiled.");
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine("Install it (Debian: apt install libnvrtc11.2; pip: nvidia-cuda-nvrtc-cu12) or set RESIDUAL_LIB_NVRTC.");
            return 3;
        }
        if (archs.Count == 0)
            archs = CudaDevices.TryInitialize(out _) ? [CudaDevices.Get(0).Arch] : ["sm_80", "sm_90"];
        foreach (var arch in archs) KernelLibrary.ParseArch(arch); // reject typos before compiling anything

        var report = LibraryResolver.Find(CudaLibrary.Nvrtc);
        Console.WriteLine($"NVRTC {nvrtc} ({report.LoadedPath}); {KernelLibrary.Sources.Count} kernel files");
        int failed = 0;
        foreach (var arch in archs)
        {
            foreach (var r in KernelLibrary.CompileAll(arch))
            {
                var what = r.Kernel is { } k ? $"{(k.IsCubin ? "cubin" : "ptx")} {k.Image.Length / 1024} KiB for {k.Arch}" : "";
                Console.WriteLine($"  {r.FileName,-16} {arch,-7} {(r.Ok ? "OK" : "FAILED"),-7} {what}");
                if (!r.Ok) failed++;
                if (r.Log.Length > 0 && (!r.Ok || r.Log.Contains("warning", StringComparison.OrdinalIgnoreCase)))
                    foreach (var line in r.Log.Split('\n')) Console.WriteLine("      " + line);
            }
        }
        Console.WriteLine(failed == 0 ? "all kernels compiled" : $"{failed} kernel file(s) FAILED");
        return failed == 0 ? 0 : 1;
    }
}
