// --model-ema's update runs on the device: the same sequence of weights averaged on the CPU and on
// CUDA gives the same average (one in-place Axpby per tensor on each backend; integer buffers
// copied), and the average stays on the GPU.
using NUnit.Framework;
using ResidualEngine.Models;
using ResidualEngine.Training;

namespace ResidualEngine.Tests.Backends.Cuda;

[Category("Gpu")]
public class CudaModelEmaTests : GpuTestBase
{
    [Test]
    public void TheAverageOnTheGpuEqualsTheCpusAndStaysThere()
    {
        using var cpu = ModelZoo.Create("resnet20", numClasses: 3, seed: 2);
        using var gpu = ModelZoo.Create("resnet20", numClasses: 3, seed: 2);
        gpu.To(Dev);
        using var a = new ModelEma(cpu, ModelZoo.Create("resnet20", numClasses: 3, seed: 9), 0.75);
        using var b = new ModelEma(gpu, ModelZoo.Create("resnet20", numClasses: 3, seed: 9).To(Dev), 0.75);
        var rng = new Random(5);
        for (int step = 0; step < 4; step++)
        {
            foreach (var (name, t) in cpu.StateDict())
            {
                if (!t.DType.IsFloat()) continue;
                using var v = TensorScope.Detach(Tensor.Randn(t.Shape, rng));
                t.Backend.Copy(t, v);
                var g = gpu.StateDict()[name];
                using var vg = TensorScope.Detach(v.To(Dev));
                g.Backend.Copy(g, vg);
            }
            a.Update();
            b.Update();
        }
        var sa = a.Shadow.StateDict();
        foreach (var (name, t) in b.Shadow.StateDict())
        {
            Assert.That(t.Device, Is.EqualTo(Dev), name);
            Assert.That(t.ToDoubles(), Is.EqualTo(sa[name].ToDoubles()).Within(1e-6), name);
        }
    }
}
