// Every kernel compiles with NVRTC to CUBIN for sm_80 and sm_90 and defines every kernel the backend
// launches — on any machine with libnvrtc, GPU or not (build.sh installs it). Also: compile errors
// carry NVRTC's log, the disk cache key follows source/arch/options, the cache round-trips, and a GPU
// newer than NVRTC gets PTX.
using System.Text;
using NUnit.Framework;
using ResidualEngine.Backends.Cuda;
using ResidualEngine.Native;

namespace ResidualEngine.Tests.Backends.Cuda;

public class KernelCompileTests
{
    private static void RequireNvrtc()
    {
        var r = LibraryResolver.Find(CudaLibrary.Nvrtc);
        if (!r.Found) Assert.Ignore("NVRTC (libnvrtc) is not installed, kernels cannot be compiled here. " + r.Describe());
    }

    // Compiling every file takes seconds: each architecture is compiled once per test run.
    private static readonly Dictionary<string, IReadOnlyList<KernelCheckResult>> s_results = new();

    private static IReadOnlyList<KernelCheckResult> Results(string arch)
    {
        lock (s_results)
        {
            if (!s_results.TryGetValue(arch, out var r)) s_results[arch] = r = KernelLibrary.CompileAll(arch);
            return r;
        }
    }

    private static string TempDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "residual-kcache-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }

    [Test]
    public void EmbeddedSourcesAreTheKernelFiles()
    {
        var names = KernelLibrary.Sources.Select(s => s.FileName).ToList();
        Assert.That(names, Is.SupersetOf(new[] { "pointwise.cu", "memory.cu", "pooling.cu", "loss.cu", "shortcut.cu", "sgd.cu", "reduce.cu", "batchnorm.cu" }));
        Assert.That(KernelLibrary.Headers.Select(h => h.FileName), Does.Contain("common.cuh"));
        foreach (var s in KernelLibrary.Sources)
            Assert.That(s.Text, Does.Not.Match("#include\\s*<"), $"{s.FileName} must not include CUDA or system headers");
    }

    [TestCase("sm_80")]
    [TestCase("sm_90")]
    public void AllKernelsCompileToCubin(string arch)
    {
        RequireNvrtc();
        var results = Results(arch);
        Assert.That(results, Has.Count.EqualTo(KernelLibrary.Sources.Count));
        foreach (var r in results)
        {
            Assert.That(r.Ok, Is.True, $"{r.FileName} for {arch}:\n{r.Log}");
            var img = r.Kernel!.Image;
            Assert.That(r.Kernel.IsCubin, Is.True);
            Assert.That(img.Take(4), Is.EqualTo(new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F' }), $"{r.FileName} is not an ELF cubin");
            Assert.That(r.MissingKernels, Is.Empty);
        }
    }

    [Test]
    public void EveryKernelTheBackendLaunchesIsDefined()
    {
        RequireNvrtc();
        var images = Results("sm_80").Where(r => r.Kernel is not null).ToDictionary(r => r.FileName, r => r.Kernel!);
        foreach (var (file, name) in CudaKernels.All())
        {
            Assert.That(images, Does.ContainKey(file));
            Assert.That(images[file].Defines(name), Is.True, $"{file} does not define {name}");
        }
        // And the check can fail: a name that does not exist is not found.
        Assert.That(images["pointwise.cu"].Defines("relu_i64"), Is.False);
        Assert.That(images["pointwise.cu"].Defines("relu_bcast"), Is.False, "prefix of a real name must not count");
    }

    [Test]
    public void BrokenKernelRaisesCompileExceptionWithTheLog()
    {
        RequireNvrtc();
        var src = new KernelSource("broken.cu", "extern \"C\" __global__ void broken(float* y)\n{\n    y[0] = not_declared_anywhere;\n}\n");
        var e = Assert.Throws<KernelCompileException>(() => KernelLibrary.Compile(src, "sm_80", cacheDirectory: ""));
        Assert.That(e!.FileName, Is.EqualTo("broken.cu"));
        Assert.That(e.Arch, Is.EqualTo("sm_80"));
        Assert.That(e.Log, Does.Contain("not_declared_anywhere").And.Contain("error"));
        Assert.That(e.Message, Does.Contain("broken.cu").And.Contain(e.Log));
    }

    [Test]
    public void CacheKeyChangesWithSourceArchOptionsAndCompiler()
    {
        var src = new KernelSource("a.cu", "extern \"C\" __global__ void k() {}");
        var hdr = new[] { new KernelSource("common.cuh", "// h") };
        var opts = KernelLibrary.Options("sm_80");
        var key = KernelLibrary.CacheKey(src, hdr, "sm_80", opts, "12.4");
        Assert.That(KernelLibrary.CacheKey(src, hdr, "sm_80", opts, "12.4"), Is.EqualTo(key), "deterministic");
        Assert.That(KernelLibrary.CacheKey(src with { Text = src.Text + " " }, hdr, "sm_80", opts, "12.4"), Is.Not.EqualTo(key));
        Assert.That(KernelLibrary.CacheKey(src, hdr, "sm_90", opts, "12.4"), Is.Not.EqualTo(key));
        Assert.That(KernelLibrary.CacheKey(src, hdr, "sm_80", opts.Append("-G").ToList(), "12.4"), Is.Not.EqualTo(key));
        Assert.That(KernelLibrary.CacheKey(src, hdr, "sm_80", opts, "12.5"), Is.Not.EqualTo(key));
        Assert.That(KernelLibrary.CacheKey(src, [new KernelSource("common.cuh", "// changed")], "sm_80", opts, "12.4"), Is.Not.EqualTo(key));
        Assert.That(KernelLibrary.CacheKey(src with { FileName = "b.cu" }, hdr, "sm_80", opts, "12.4"), Is.Not.EqualTo(key));
    }

    [Test]
    public void DiskCacheRoundTripsAndRejectsCorruptFiles()
    {
        RequireNvrtc();
        var dir = TempDir();
        try
        {
            var src = KernelLibrary.Source("sgd.cu");
            var first = KernelLibrary.Compile(src, "sm_80", dir);
            Assert.That(first.FromCache, Is.False);
            var file = Path.Combine(dir, first.CacheKey + ".cubin");
            Assert.That(File.Exists(file), Is.True);

            var second = KernelLibrary.Compile(src, "sm_80", dir);
            Assert.That(second.FromCache, Is.True);
            Assert.That(second.Image, Is.EqualTo(first.Image));

            File.WriteAllBytes(file, Encoding.ASCII.GetBytes("garbage"));
            var third = KernelLibrary.Compile(src, "sm_80", dir);
            Assert.That(third.FromCache, Is.False, "a corrupt cache entry is recompiled");
            Assert.That(File.ReadAllBytes(file), Is.EqualTo(first.Image), "and replaced");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void GpuNewerThanNvrtcGetsPtxForTheNewestKnownArch()
    {
        RequireNvrtc();
        int max = KernelLibrary.SupportedArchs().Max();
        var k = KernelLibrary.Compile(KernelLibrary.Source("shortcut.cu"), $"sm_{max + 100}", cacheDirectory: "");
        Assert.That(k.IsCubin, Is.False);
        Assert.That(k.Arch, Is.EqualTo($"compute_{max}"));
        Assert.That(k.Image[^1], Is.Zero, "PTX handed to cuModuleLoadData must be NUL-terminated");
        Assert.That(Encoding.ASCII.GetString(k.Image), Does.Contain(".entry shortcut_a_forward_f32"));
    }

    [Test]
    public void ArchitectureStringsParse()
    {
        Assert.That(KernelLibrary.ParseArch("sm_90"), Is.EqualTo(90));
        Assert.That(KernelLibrary.ParseArch("sm_90a"), Is.EqualTo(90));
        Assert.That(KernelLibrary.ParseArch("compute_80"), Is.EqualTo(80));
        Assert.That(KernelLibrary.ParseArch("86"), Is.EqualTo(86));
        Assert.Throws<ArgumentException>(() => KernelLibrary.ParseArch("hopper"));
        Assert.Throws<ArgumentException>(() => KernelLibrary.ParseArch("sm_"));
    }

    [Test]
    public void ReadmeWorkedExampleIsTheCodeInTheRepository()
    {
        // Kernels/README.md teaches one way to add an op, with SiLU: its code blocks must be the
        // real Silu.cs and pointwise.cu lines, so the guide cannot drift from the code.
        var readme = FindRepoFile("Kernels/README.md");
        if (readme is null) Assert.Ignore("Kernels/README.md is not next to this build (published bundle)");
        var text = File.ReadAllText(readme);
        var silu = File.ReadAllText(FindRepoFile("Engine/Ops/Pointwise/Silu.cs")!);
        var table = File.ReadAllText(FindRepoFile("Kernels/pointwise.cu")!);
        var cuda = Block(text, "```cuda");
        var csharp = Block(text, "```csharp");
        Assert.That(cuda, Is.Not.Empty);
        Assert.That(csharp, Is.Not.Empty);
        foreach (var line in cuda) Assert.That(table, Does.Contain(line), "pointwise.cu lacks a README line");
        foreach (var line in csharp) Assert.That(silu, Does.Contain(line), "Silu.cs lacks a README line");
    }

    private static List<string> Block(string text, string fence)
    {
        int start = text.IndexOf(fence, StringComparison.Ordinal);
        Assert.That(start, Is.GreaterThanOrEqualTo(0), $"README has a {fence} block");
        start = text.IndexOf('\n', start) + 1;
        return text[start..text.IndexOf("```", start, StringComparison.Ordinal)]
            .Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
    }

    internal static string? FindRepoFile(string relative)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            var p = Path.Combine(d.FullName, relative);
            if (File.Exists(p)) return p;
        }
        return null;
    }
}
