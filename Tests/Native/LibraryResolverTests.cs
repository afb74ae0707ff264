// The library resolver's search order and failure report, on a fake file system and a fake loader:
// overrides first, then toolkit roots, well-known folders, Python wheels (virtual env before system),
// then the loader's default; stubs never; companions before the main library; every path in the report.
using NUnit.Framework;
using ResidualEngine.Native;

namespace ResidualEngine.Tests.Native;

public partial class LibraryResolverTests
{
    /// <summary>An in-memory file system: files and folders are full paths.</summary>
    private sealed class FakeEnv : ISearchEnvironment
    {
        public Dictionary<string, string> Vars { get; } = new();
        public HashSet<string> FilesSet { get; } = new(StringComparer.Ordinal);
        public bool IsWindows { get; init; }
        public string HomeDirectory { get; init; } = "/home/u";

        public FakeEnv With(params string[] files)
        {
            foreach (var f in files) FilesSet.Add(f);
            return this;
        }

        public string? GetVariable(string name) => Vars.TryGetValue(name, out var v) ? v : null;
        public bool FileExists(string path) => FilesSet.Contains(path);

        private IEnumerable<string> Dirs() => FilesSet.SelectMany(Ancestors).Distinct();

        private static IEnumerable<string> Ancestors(string f)
        {
            for (var d = Path.GetDirectoryName(f); !string.IsNullOrEmpty(d); d = Path.GetDirectoryName(d)) yield return d;
        }

        public IEnumerable<string> Directories(string dir, string pattern) =>
            Dirs().Where(d => Path.GetDirectoryName(d) == dir && Matches(Path.GetFileName(d), pattern));

        public IEnumerable<string> Files(string dir, string pattern) =>
            FilesSet.Where(f => Path.GetDirectoryName(f) == dir && Matches(Path.GetFileName(f), pattern));

        private static bool Matches(string name, string pattern)
        {
            var parts = pattern.Split('*');
            if (!name.StartsWith(parts[0], StringComparison.Ordinal)) return false;
            int at = parts[0].Length;
            for (int i = 1; i < parts.Length; i++)
            {
                int j = i == parts.Length - 1 ? (name.EndsWith(parts[i], StringComparison.Ordinal) && name.Length - parts[i].Length >= at ? name.Length - parts[i].Length : -1)
                    : name.IndexOf(parts[i], at, StringComparison.Ordinal);
                if (j < 0) return false;
                at = j + parts[i].Length;
            }
            return true;
        }
    }

    /// <summary>Loads exactly the paths it is told to, records the order of load calls.</summary>
    private sealed class FakeLoader : ILibraryLoader
    {
        public HashSet<string> Loadable { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, string> DefaultSearch { get; } = new(); // file name -> path the system loader would pick
        public List<string> Calls { get; } = new();
        public List<nint> Freed { get; } = new();

        public bool TryLoad(string pathOrName, out nint handle, out string error)
        {
            Calls.Add(pathOrName);
            if (Loadable.Contains(pathOrName) || DefaultSearch.ContainsKey(pathOrName))
            {
                handle = 1000 + Calls.Count;
                error = "";
                return true;
            }
            handle = 0;
            error = "cannot open shared object file";
            return false;
        }

        public string? LoadedPathOf(string fileName) => DefaultSearch.TryGetValue(fileName, out var p) ? p : null;
        public void Free(nint handle) => Freed.Add(handle);
    }

    [Test]
    public void OverridesComeFirstThenToolkitThenWellKnownFolders()
    {
        var env = new FakeEnv().With("/opt/my/libnvrtc.so.12");
        env.Vars["RESIDUAL_LIB_NVRTC"] = "/opt/my/libnvrtc.so.12";
        env.Vars["RESIDUAL_CUDA_LIB_DIR"] = "/a:/b";
        env.Vars["CUDA_PATH"] = "/cp";
        env.Vars["CUDA_HOME"] = "/ch";
        var plan = LibraryResolver.SearchPlan(CudaLibrary.Nvrtc, env);
        int I(string p) => plan.ToList().IndexOf(p);
        Assert.That(plan[0], Is.EqualTo("/opt/my/libnvrtc.so.12"));
        Assert.That(I("/a/libnvrtc.so.13"), Is.GreaterThan(0));
        Assert.That(I("/a/libnvrtc.so.13"), Is.LessThan(I("/b/libnvrtc.so.13")));
        Assert.That(I("/b/libnvrtc.so.11.2"), Is.LessThan(I("/cp/lib64/libnvrtc.so.13")));
        Assert.That(I("/cp/lib64/libnvrtc.so"), Is.LessThan(I("/cp/lib/libnvrtc.so.13")));
        Assert.That(I("/cp/lib/libnvrtc.so"), Is.LessThan(I("/ch/lib64/libnvrtc.so.13")));
        Assert.That(I("/ch/lib/libnvrtc.so"), Is.LessThan(I("/usr/local/cuda/lib64/libnvrtc.so.13")));
        Assert.That(I("/usr/local/cuda/lib64/libnvrtc.so"), Is.LessThan(I("/usr/local/nvidia/lib64/libnvrtc.so.13")));
        // Within a folder, newest version first, the unversioned name last.
        Assert.That(plan.Where(p => p.StartsWith("/cp/lib64/", StringComparison.Ordinal)),
            Is.EqualTo(new[] { "/cp/lib64/libnvrtc.so.13", "/cp/lib64/libnvrtc.so.12", "/cp/lib64/libnvrtc.so.11.2", "/cp/lib64/libnvrtc.so" }));
    }

    [Test]
    public void FolderOverrideIsSearchedForEveryName()
    {
        var env = new FakeEnv();
        env.Vars["RESIDUAL_LIB_CUDNN"] = "/opt/cudnn";
        var plan = LibraryResolver.SearchPlan(CudaLibrary.Cudnn, env);
        Assert.That(plan.Take(3), Is.EqualTo(new[] { "/opt/cudnn/libcudnn.so.9", "/opt/cudnn/libcudnn.so.8", "/opt/cudnn/libcudnn.so" }));
    }

    [Test]
    public void PythonWheelsAreSearchedVirtualEnvFirstButNeverForTheDriver()
    {
        var env = new FakeEnv { HomeDirectory = "/home/u" }.With(
            "/venv/lib/python3.11/site-packages/nvidia/cublas/lib/libcublas.so.12",
            "/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cublas/lib/libcublas.so.12",
            "/usr/local/lib/python3.10/dist-packages/nvidia/cublas/lib/libcublas.so.12",
            "/usr/lib/python3.12/site-packages/nvidia/cublas/lib/libcublas.so.12",
            "/home/u/.local/lib/python3.9/site-packages/nvidia/cu13/lib/libcublas.so.13");
        env.Vars["VIRTUAL_ENV"] = "/venv";
        var plan = LibraryResolver.SearchPlan(CudaLibrary.Cublas, env).ToList();
        int I(string p) => plan.IndexOf(p);
        var venv = I("/venv/lib/python3.11/site-packages/nvidia/cublas/lib/libcublas.so.12");
        var torch = I("/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cublas/lib/libcublas.so.12");
        var sys = I("/usr/lib/python3.12/site-packages/nvidia/cublas/lib/libcublas.so.12");
        var local = I("/usr/local/lib/python3.10/dist-packages/nvidia/cublas/lib/libcublas.so.12");
        var user = I("/home/u/.local/lib/python3.9/site-packages/nvidia/cu13/lib/libcublas.so.13");
        Assert.That(new[] { venv, torch, sys, local, user }, Has.All.GreaterThanOrEqualTo(0), string.Join("\n", plan));
        Assert.That(venv, Is.LessThan(torch));
        Assert.That(torch, Is.LessThan(sys));
        Assert.That(sys, Is.LessThan(local));
        Assert.That(local, Is.LessThan(user));
        Assert.That(I("/usr/local/nvidia/lib64/libcublas.so"), Is.LessThan(venv), "system CUDA folders come before wheels");

        var driverEnv = new FakeEnv().With("/venv/lib/python3.11/site-packages/nvidia/cuda_runtime/lib/libcuda.so.1");
        driverEnv.Vars["VIRTUAL_ENV"] = "/venv";
        Assert.That(LibraryResolver.SearchPlan(CudaLibrary.Driver, driverEnv), Has.None.Contains("site-packages"));
    }

    [Test]
    public void StubFoldersAreNeverCandidates()
    {
        var env = new FakeEnv().With("/usr/local/cuda/lib64/stubs/libcuda.so");
        env.Vars["RESIDUAL_CUDA_LIB_DIR"] = "/usr/local/cuda/lib64/stubs";
        env.Vars["CUDA_PATH"] = "/usr/local/cuda/lib64/stubs/..";
        Assert.That(LibraryResolver.SearchPlan(CudaLibrary.Driver, env), Has.None.Contains("/stubs/"));
    }

    [Test]
    public void StubPickedByTheDefaultLoaderIsRejected()
    {
        var env = new FakeEnv();
        var loader = new FakeLoader();
        loader.DefaultSearch["libcuda.so"] = "/usr/local/cuda/lib64/stubs/libcuda.so";
        var report = LibraryResolver.Probe(CudaLibrary.Driver, env, loader);
        Assert.That(report.Found, Is.False);
        Assert.That(loader.Freed, Has.Count.EqualTo(1));
        Assert.That(report.Describe(), Does.Contain("stub"));
    }

    [Test]
    public void PreferredMajorVersionIsTriedFirst()
    {
        Assert.That(LibraryResolver.FileNames(CudaLibrary.Nvrtc, false, 12)[0], Is.EqualTo("libnvrtc.so.12"));
        Assert.That(LibraryResolver.FileNames(CudaLibrary.Nvrtc, false, 11)[0], Is.EqualTo("libnvrtc.so.11.2"));
        Assert.That(LibraryResolver.FileNames(CudaLibrary.Cublas, false)[0], Is.EqualTo("libcublas.so.13"));
        Assert.That(LibraryResolver.FileNames(CudaLibrary.Nvrtc, true, 12)[0], Is.EqualTo("nvrtc64_120_0.dll"));
    }

    [TestCase("libnvrtc.so.11.2", 11)]
    [TestCase("libcublas.so.12", 12)]
    [TestCase("libcudnn_ops.so.9", 9)]
    [TestCase("libnvrtc-builtins.so.12.4", 12)]
    [TestCase("nvrtc64_120_0.dll", 12)]
    [TestCase("cublas64_11.dll", 11)]
    [TestCase("cudnn64_9.dll", 9)]
    public void MajorVersionIsReadFromFileNames(string name, int major) =>
        Assert.That(LibraryResolver.MajorOf(name), Is.EqualTo(major));

    [Test]
    public void UnversionedNameHasNoMajor() => Assert.That(LibraryResolver.MajorOf("libcudnn.so"), Is.Null);

    [Test]
    public void WindowsUsesDllNamesAndBinFolders()
    {
        var env = new FakeEnv { IsWindows = true };
        env.Vars["CUDA_PATH"] = "C:/CUDA/v12.4";
        var plan = LibraryResolver.SearchPlan(CudaLibrary.Cublas, env);
        Assert.That(plan, Does.Contain(Path.Combine("C:/CUDA/v12.4", "bin", "cublas64_12.dll")));
        Assert.That(plan, Does.Contain(Path.Combine("C:/CUDA/v12.4", "bin", "x64", "cublas64_13.dll")));
        Assert.That(plan, Has.None.Contains("/usr/local"));
        Assert.That(LibraryResolver.FileNames(CudaLibrary.Driver, true), Is.EqualTo(new[] { "nvcuda.dll" }));
    }

    [Test]
    public void FailureReportListsEveryPathTried()
    {
        var env = new FakeEnv().With("/cp/lib64/libcudnn.so.9"); // present but not loadable
        env.Vars["CUDA_PATH"] = "/cp";
        var loader = new FakeLoader();
        var report = LibraryResolver.Probe(CudaLibrary.Cudnn, env, loader);
        Assert.That(report.Found, Is.False);
        var plan = LibraryResolver.SearchPlan(CudaLibrary.Cudnn, env);
        var text = report.Describe();
        foreach (var p in plan) Assert.That(text, Does.Contain(p));
        foreach (var n in LibraryResolver.FileNames(CudaLibrary.Cudnn, false)) Assert.That(text, Does.Contain(n + " (loader default search)"));
        Assert.That(report.Attempts.Single(a => a.Path == "/cp/lib64/libcudnn.so.9").Outcome, Does.StartWith("present but failed to load"));
        Assert.That(report.Attempts.Single(a => a.Path == "/cp/lib64/libcudnn.so.8").Outcome, Is.EqualTo("not present"));

        var e = new NativeLibraryNotFoundException(report);
        Assert.That(e, Is.InstanceOf<DllNotFoundException>());
        Assert.That(e.Message, Does.Contain("/cp/lib64/libcudnn.so.9").And.Contain("RESIDUAL_LIB_CUDNN"));
    }

    [Test]
    public void FirstLoadableCandidateWinsAndCompanionsLoadBeforeIt()
    {
        const string dir = "/venv/lib/python3.11/site-packages/nvidia/cublas/lib";
        var env = new FakeEnv().With($"{dir}/libcublas.so.12", $"{dir}/libcublasLt.so.12", $"{dir}/libcublasLt.so.11");
        env.Vars["VIRTUAL_ENV"] = "/venv";
        var loader = new FakeLoader();
        loader.Loadable.Add($"{dir}/libcublas.so.12");
        loader.Loadable.Add($"{dir}/libcublasLt.so.12");
        var report = LibraryResolver.Probe(CudaLibrary.Cublas, env, loader);
        Assert.That(report.Found, Is.True);
        Assert.That(report.LoadedPath, Is.EqualTo($"{dir}/libcublas.so.12"));
        int lt = loader.Calls.IndexOf($"{dir}/libcublasLt.so.12"), main = loader.Calls.IndexOf($"{dir}/libcublas.so.12");
        Assert.That(lt, Is.GreaterThanOrEqualTo(0).And.LessThan(main), "libcublasLt of the same major loads first");
        Assert.That(loader.Calls, Does.Not.Contain($"{dir}/libcublasLt.so.11"));
    }

    [Test]
    public void LoaderDefaultIsTheLastResortAndReportsWhereItLoadedFrom()
    {
        var env = new FakeEnv();
        var loader = new FakeLoader();
        loader.DefaultSearch["libnvrtc.so.12"] = "/usr/lib/x86_64-linux-gnu/libnvrtc.so.12.4.99";
        var report = LibraryResolver.Probe(CudaLibrary.Nvrtc, env, loader);
        Assert.That(report.Found, Is.True);
        Assert.That(report.LoadedPath, Is.EqualTo("/usr/lib/x86_64-linux-gnu/libnvrtc.so.12.4.99"));
        Assert.That(report.Attempts.Last().Outcome, Does.Contain("/usr/lib/x86_64-linux-gnu/libnvrtc.so.12.4.99"));
        Assert.That(report.Attempts.Any(a => a.Path.StartsWith("libnvrtc.so.13", StringComparison.Ordinal)), Is.True, "newer names were tried first");
    }

    [Test]
    public void RealNvrtcIsFoundOnThisMachineWhenInstalled()
    {
        var report = LibraryResolver.Find(CudaLibrary.Nvrtc);
        if (!report.Found) Assert.Ignore("NVRTC is not installed here: " + report.Describe());
        Assert.That(report.LoadedPath, Does.Contain("nvrtc"));
        Assert.That(report.LoadedPath, Does.Not.Contain("/stubs/"));
    }
}
