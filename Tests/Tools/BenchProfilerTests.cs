// The op profiler of `residual bench --profile`: backend calls made by tensors created while it is
// installed are counted under the current phase; nothing is recorded in setup; uninstalling
// restores the plain backend.
using NUnit.Framework;
using ResidualEngine.Backends;
using ResidualEngine.Backends.Cpu;
using ResidualEngine.Tools.Bench;

namespace ResidualEngine.Tests.Tools;

[NonParallelizable]
public class BenchProfilerTests
{
    [Test]
    public void CallsAreFiledByPhaseAndOp()
    {
        using var scope = TensorScope.Begin();
        IReadOnlyList<ProfileRow> rows;
        using (var profiler = new OpProfiler())
        {
            var x = Tensor.FromArray(new float[] { -1, 2, -3, 4 }, 4);       // setup: not recorded
            Assert.That(x.Backend, Is.InstanceOf<ProfilingBackend>());
            x.RequiresGrad = true;
            profiler.Phase = OpProfiler.Forward;
            var y = Ops.Sum(Ops.Relu(x));
            profiler.Phase = OpProfiler.Backward;
            y.Backward();
            profiler.Phase = null;
            profiler.Steps = 1;
            Assert.That(y.Item(), Is.EqualTo(6));
            rows = profiler.Rows();
        }
        Assert.That(rows.Single(r => r.Phase == OpProfiler.Forward && r.Op == "Relu").Calls, Is.EqualTo(1));
        Assert.That(rows.Single(r => r.Phase == OpProfiler.Forward && r.Op == "SumTo").Calls, Is.EqualTo(1));
        Assert.That(rows.Any(r => r.Phase == OpProfiler.Backward && r.Op == "ReluBackward"), Is.True);
        Assert.That(rows.Any(r => r.Op == "CopyFromHost"), Is.False, "setup calls must not be recorded");
        Assert.That(rows.Sum(r => r.Percent), Is.EqualTo(100).Within(1e-6));
        Assert.That(rows.TakeWhile(r => r.Phase == OpProfiler.Forward).Count(), Is.EqualTo(rows.Count(r => r.Phase == OpProfiler.Forward)),
            "forward rows come first");
        var text = OpProfiler.Format(rows, "title");
        Assert.That(text, Does.Contain("Relu").And.Contain("ReluBackward"));
    }

    [Test]
    public void UninstallRestoresThePlainBackend()
    {
        using (new OpProfiler()) { }
        Assert.That(BackendRegistry.Interceptor, Is.Null);
        using var scope = TensorScope.Begin();
        Assert.That(Tensor.Zeros(2).Backend, Is.SameAs(CpuBackend.Instance));
    }
}
