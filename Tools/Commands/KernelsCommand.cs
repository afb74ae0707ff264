// `residual kernels`: list the embedded CUDA kernels, or compile-check them with NVRTC for one or
// more architectures (no GPU needed). `check` prints OK/FAILED per file with the compiler log and
// exits 1 on any failure, 3 when NVRTC cannot be found (with every path the resolver tried).
using System.Text.RegularExpressions;
using ResidualEngine.Backends.Cuda;
using ResidualEngine.Native;
using System.CommandLine;
using System.Text.Json.Nodes;
using ResidualEngine.Tools.Cli;

namespace ResidualEngine.Tools.Commands;

public static partial class KernelsCommand
{
    public static Command Create()
    {
        var list = new Command("list", "List the kernel files embedded in the engine and the kernels each declares.");
        list.SetAction(_ => List());
        var arch = new Option<string[]>("--arch") { Description = "target architecture, e.g. sm_90; repeat for several (default: the GPU's, else sm_80 and sm_90)", HelpName = "sm_NN", Arity = ArgumentArity.OneOrMore };
        var json = new Option<bool>("--json") { Description = "print the results as JSON (schema residual.kernels-check/1, docs/cli-json.md); the text report goes to stderr" };
        var check = new Command("check", "Compile every kernel with NVRTC (no GPU needed); exit 1 on any failure, 3 when NVRTC is missing.") { arch, json };
        check.SetAction(parse => Check((parse.GetValue(arch) ?? []).ToList(), parse.GetValue(json)));
        return new Command("kernels", "The CUDA kernels (Kernels/*.cu, embedded in the engine and compiled by NVRTC at run time).") { list, check };
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

    private static int Check(List<string> archs, bool json)
    {
        BenchCommand.Usage(() => archs.Select(KernelLibrary.ParseArch).ToList()); // reject typos before anything else
        var doc = CliJson.Document("kernels-check");
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
            if (json)
            {
                doc["nvrtc"] = null;
                doc["error"] = e.Message;
                doc["ok"] = false;
                Console.WriteLine(CliJson.Text(doc));
            }
            return 3;
        }
        if (archs.Count == 0)
            archs = CudaDevices.TryInitialize(out _) ? [CudaDevices.Get(0).Arch] : ["sm_80", "sm_90"];

        var report = LibraryResolver.Find(CudaLibrary.Nvrtc);
        var text = json ? Console.Error : Console.Out;
        text.WriteLine($"NVRTC {nvrtc} ({report.LoadedPath}); {KernelLibrary.Sources.Count} kernel files");
        int failed = 0;
        var results = new JsonArray();
        foreach (var arch in archs)
        {
            foreach (var r in KernelLibrary.CompileAll(arch))
            {
                var what = r.Kernel is { } k ? $"{(k.IsCubin ? "cubin" : "ptx")} {k.Image.Length / 1024} KiB for {k.Arch}" : "";
                text.WriteLine($"  {r.FileName,-16} {arch,-7} {(r.Ok ? "OK" : "FAILED"),-7} {what}");
                if (!r.Ok) failed++;
                if (r.Log.Length > 0 && (!r.Ok || r.Log.Contains("warning", StringComparison.OrdinalIgnoreCase)))
                    foreach (var line in r.Log.Split('\n')) text.WriteLine("      " + line);
                results.Add(new JsonObject
                {
                    ["file"] = r.FileName, ["arch"] = arch, ["ok"] = r.Ok,
                    ["image"] = r.Kernel is { } ki ? (ki.IsCubin ? "cubin" : "ptx") : null,
                    ["image_bytes"] = r.Kernel?.Image.Length,
                    ["log"] = r.Log,
                });
            }
        }
        text.WriteLine(failed == 0 ? "all kernels compiled" : $"{failed} kernel file(s) FAILED");
        if (json)
        {
            doc["nvrtc"] = nvrtc;
            doc["nvrtc_path"] = report.LoadedPath;
            doc["archs"] = new JsonArray(archs.Select(x => (JsonNode?)x).ToArray());
            doc["results"] = results;
            doc["failed"] = failed;
            doc["ok"] = failed == 0;
            Console.WriteLine(CliJson.Text(doc));
        }
        return failed == 0 ? 0 : 1;
    }
}
