// AdamW, LARS and gradient clipping run their rules on the device: the same parameters and
// gradients stepped on the CPU and on CUDA end at the same values (F32 tolerances), and their
// state buffers stay on the GPU.
using NUnit.Framework;
using ResidualEngine.Nn.Optim;

namespace ResidualEngine.Tests.Backends.Cuda;

[Category("Gpu")]
public class CudaOptimizerTests : GpuTestBase
{
    private static List<Tensor> Params(Device d, int seed)
    {
        var rng = new Random(seed);
        Shape[] shapes = [new(8, 3, 3, 3), new(8), new(10, 8)];
        return shapes.Select(s =>
        {
            var t = TensorScope.Detach(Tensor.Randn(s, rng).To(d));
            t.RequiresGrad = true;
            return t;
        }).ToList();
    }

    private static void Grads(List<Tensor> ps, int step)
    {
        var rng = new Random(100 + step);
        foreach (var p in ps)
        {
            p.Grad?.Dispose();
            using var g = Tensor.Randn(p.Shape, rng);
            p.Grad = TensorScope.Detach(Ops.Scale(g, 3).To(p.Device));
        }
    }

    [TestCase("adamw")]
    [TestCase("amsgrad")]
    [TestCase("lars")]
    [TestCase("lars-nesterov")]
    public void TheRuleOnTheGpuMatchesTheCpu(string rule)
    {
        IOptimizer Make(List<Tensor> ps) => rule switch
        {
            "adamw" => new AdamW([new ParamGroup(ps, 0.05)], 0.01),
            "amsgrad" => new AdamW([new ParamGroup(ps, 0.05)], 0.01, 0.8, 0.99, 1e-6, amsgrad: true),
            "lars" => new Lars([new ParamGroup(ps, 1e-4)], 0.5),
            _ => new Lars([new ParamGroup(ps, 1e-4)], 0.5, nesterov: true),
        };
        var cpu = Params(Device.Cpu, 1);
        var gpu = Params(Dev, 1);
        using var a = Make(cpu);
        using var b = Make(gpu);
        for (int step = 0; step < 3; step++)
        {
            Grads(cpu, step);
            Grads(gpu, step);
            GradClip.ClipGradNormDeferred(cpu, 5.0)!.Dispose();
            using (var s = GradClip.ClipGradNormDeferred(gpu, 5.0)!) Assert.That(s.Device, Is.EqualTo(Dev));
            a.Step();
            b.Step();
        }
        for (int i = 0; i < cpu.Count; i++) Near(gpu[i], cpu[i], $"{rule} parameter {i}", 1e-5, 1e-5);
        Assert.That(b.StateTensors().Where(s => s.Name != "steps").Select(s => s.Buffer.Device), Is.All.EqualTo(Dev));
        foreach (var p in cpu.Concat(gpu)) { p.Grad?.Dispose(); p.Dispose(); }
    }
}
