// The collective-communication libraries without a GPU or a job: NCCL is found like the CUDA
// libraries (the CUDA install, PyTorch's wheel site-packages/nvidia/nccl/lib, the loader) and,
// when absent, the error lists every path tried and the variable to set; MPI is found by its own
// search, the launcher's implementation first; Open MPI's handles are its exported globals and
// MPICH's are mpi.h's integers (MpiAbi, the one place that knows); the launch variables of
// Open MPI and of PMI launchers say which rank a process is.
using NUnit.Framework;
using ResidualEngine.Distributed;
using ResidualEngine.Native;

namespace ResidualEngine.Tests.Native;

public partial class LibraryResolverTests
{
    [Test]
    public void NcclIsLookedForInTheCudaInstallAndInPyTorchsWheel()
    {
        var env = new FakeEnv().With("/usr/local/lib/python3.11/dist-packages/nvidia/nccl/lib/libnccl.so.2");
        env.Vars["CUDA_HOME"] = "/opt/cuda";
        var plan = LibraryResolver.SearchPlan(CudaLibrary.Nccl, env).ToList();
        int I(string p) => plan.IndexOf(p);
        Assert.That(I("/opt/cuda/lib64/libnccl.so.2"), Is.GreaterThanOrEqualTo(0));
        Assert.That(I("/usr/local/cuda/lib64/libnccl.so.2"), Is.GreaterThan(I("/opt/cuda/lib64/libnccl.so.2")));
        Assert.That(I("/usr/local/lib/python3.11/dist-packages/nvidia/nccl/lib/libnccl.so.2"), Is.GreaterThan(I("/usr/local/cuda/lib64/libnccl.so.2")));
        var loader = new FakeLoader();
        loader.Loadable.Add("/usr/local/lib/python3.11/dist-packages/nvidia/nccl/lib/libnccl.so.2");
        var report = LibraryResolver.Probe(CudaLibrary.Nccl, env, loader);
        Assert.That(report.LoadedPath, Is.EqualTo("/usr/local/lib/python3.11/dist-packages/nvidia/nccl/lib/libnccl.so.2"));
    }

    [Test]
    public void MissingNcclSaysWhereItLookedAndHowToPointAtIt()
    {
        var env = new FakeEnv();
        var report = LibraryResolver.Probe(CudaLibrary.Nccl, env, new FakeLoader());
        Assert.That(report.Found, Is.False);
        var message = new NativeLibraryNotFoundException(report).Message;
        Assert.That(message, Does.StartWith("NCCL was not found; paths tried:"));
        Assert.That(message, Does.Contain("/usr/local/cuda/lib64/libnccl.so.2: not present"));
        Assert.That(message, Does.Contain("libnccl.so.2 (loader default search): not found"));
        Assert.That(message, Does.Contain("RESIDUAL_LIB_NCCL"));
    }

    [Test]
    public void MpiOverrideComesFirstThenTheLaunchersLibrary()
    {
        var env = new FakeEnv().With("/opt/mpi/libmpi.so.12");
        env.Vars["RESIDUAL_LIB_MPI"] = "/opt/mpi";
        Assert.That(MpiLibrary.SearchPlan(env), Is.EqualTo(new[] { "/opt/mpi/libmpi.so.40", "/opt/mpi/libmpi.so.12", "/opt/mpi/libmpi.so" }));
        var loader = new FakeLoader();
        loader.Loadable.Add("/opt/mpi/libmpi.so.12");
        Assert.That(MpiLibrary.Probe(env, loader).LoadedPath, Is.EqualTo("/opt/mpi/libmpi.so.12"));

        var openMpiJob = new FakeEnv();
        openMpiJob.Vars["OMPI_COMM_WORLD_SIZE"] = "2";
        Assert.That(MpiLibrary.FileNames(openMpiJob)[0], Is.EqualTo("libmpi.so.40"));
        var hydraJob = new FakeEnv();
        hydraJob.Vars["PMI_SIZE"] = "2";
        Assert.That(MpiLibrary.FileNames(hydraJob)[0], Is.EqualTo("libmpi.so.12"), "MPICH's Hydra started us: MPICH's library first");
    }

    [Test]
    public void MissingMpiSaysWhereItLookedAndHowToInstallIt()
    {
        var report = MpiLibrary.Probe(new FakeEnv(), new FakeLoader());
        Assert.That(report.Found, Is.False);
        var message = new MpiNotFoundException(report).Message;
        Assert.That(message, Does.Contain("libmpi.so.40 (loader default search): not found"));
        Assert.That(message, Does.Contain("/usr/lib64/openmpi/lib/libmpi.so.40: not present"));
        Assert.That(message, Does.Contain("apt-get install openmpi-bin libopenmpi-dev").And.Contain("RESIDUAL_LIB_MPI"));
    }

    [Test]
    public void MpiHandlesAreOpenMpisGlobalsOrMpichsConstants()
    {
        var exports = new Dictionary<string, nint>
        {
            ["ompi_mpi_comm_world"] = 0x1000, ["ompi_mpi_byte"] = 0x1010, ["ompi_mpi_int"] = 0x1020, ["ompi_mpi_long_long_int"] = 0x1030,
            ["ompi_mpi_float"] = 0x1040, ["ompi_mpi_double"] = 0x1050, ["ompi_mpi_op_sum"] = 0x1060, ["ompi_mpi_op_max"] = 0x1070, ["ompi_mpi_op_min"] = 0x1080,
        };
        var ompi = MpiAbi.Detect(n => exports.GetValueOrDefault(n));
        Assert.That((ompi.Implementation, ompi.CommWorld, ompi.Float, ompi.Double, ompi.Sum, ompi.InPlace),
            Is.EqualTo((MpiImplementation.OpenMpi, (nint)0x1000, (nint)0x1040, (nint)0x1050, (nint)0x1060, (nint)1)));
        exports.Remove("ompi_mpi_op_max");
        Assert.That(() => MpiAbi.Detect(n => exports.GetValueOrDefault(n)), Throws.InstanceOf<MpiException>().With.Message.Contains("ompi_mpi_op_max"));

        var mpich = MpiAbi.Detect(_ => 0);
        Assert.That((mpich.Implementation, mpich.CommWorld, mpich.Float, mpich.Double, mpich.Sum, mpich.InPlace),
            Is.EqualTo((MpiImplementation.Mpich, (nint)0x44000000, (nint)0x4c00040a, (nint)0x4c00080b, (nint)0x58000003, (nint)(-1))));
    }

    [Test]
    public void OpenMpisHandlesResolveInTheInstalledLibrary()
    {
        if (!MpiLibrary.Find().Found) Assert.Ignore("SKIPPED: Open MPI is not installed (" + MpiLibrary.Find().Describe().Split('\n')[0] + ")");
        var abi = MpiAbi.Current;
        Assert.That(abi.Implementation, Is.EqualTo(MpiImplementation.OpenMpi), "Debian's openmpi is what build.sh installs");
        Assert.That(new[] { abi.CommWorld, abi.Byte, abi.Int32, abi.Int64, abi.Float, abi.Double, abi.Sum, abi.Max, abi.Min }, Has.All.Not.EqualTo((nint)0));
        Assert.That(Mpi.LibraryVersion(), Does.StartWith("Open MPI v"));
    }

    [Test]
    public void LaunchVariablesSayWhichRankThisIs()
    {
        Assert.That(LaunchEnvironment.Detect(_ => null), Is.Null, "no launcher: one process, MPI untouched");
        var ompi = new Dictionary<string, string> { ["OMPI_COMM_WORLD_SIZE"] = "4", ["OMPI_COMM_WORLD_RANK"] = "3", ["OMPI_COMM_WORLD_LOCAL_RANK"] = "1", ["OMPI_COMM_WORLD_LOCAL_SIZE"] = "2" };
        Assert.That(LaunchEnvironment.Detect(ompi.GetValueOrDefault), Is.EqualTo(new LaunchInfo(4, 3, 1, 2, "Open MPI")));
        var pmi = new Dictionary<string, string> { ["PMI_SIZE"] = "8", ["PMI_RANK"] = "5", ["MPI_LOCALRANKID"] = "1", ["MPI_LOCALNRANKS"] = "4" };
        Assert.That(LaunchEnvironment.Detect(pmi.GetValueOrDefault), Is.EqualTo(new LaunchInfo(8, 5, 1, 4, "PMI")));
        ompi["OMPI_COMM_WORLD_RANK"] = "4";
        Assert.That(() => LaunchEnvironment.Detect(ompi.GetValueOrDefault), Throws.InvalidOperationException.With.Message.Contains("rank 4 of 4"));
    }

    [Test]
    public void InfoReportsMpiAndNccl()
    {
        var j = ResidualEngine.Tools.Commands.InfoCommand.Json();
        var nccl = j["libraries"]!.AsArray().Single(l => (string?)l!["name"] == "NCCL")!;
        Assert.That((bool)nccl["found"]!, Is.EqualTo(LibraryResolver.Find(CudaLibrary.Nccl).Found));
        Assert.That(nccl["tried"]!.AsArray(), Is.Not.Empty, "where NCCL was looked for");
        var mpi = j["mpi"]!;
        Assert.That((bool)mpi["found"]!, Is.EqualTo(MpiLibrary.Find().Found));
        if (MpiLibrary.Find().Found)
            Assert.That(((string?)mpi["version"], (string?)mpi["path"]), Is.EqualTo((Mpi.LibraryVersion(), MpiLibrary.Find().LoadedPath)));
        else Assert.That(mpi["tried"]!.AsArray(), Is.Not.Empty);
    }

    [Test]
    public void NcclNeedsACudaDevice()
    {
        Assert.That(() => new NcclProcessGroup(SingleProcessGroup.Instance, Device.Cpu), Throws.ArgumentException.With.Message.Contains("CUDA devices"));
    }
}
