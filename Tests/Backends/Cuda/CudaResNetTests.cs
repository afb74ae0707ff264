// ResNet-18 (torchvision layout, 1000 classes) at batch 8 on 3x64x64 images: one training step
// (forward, cross-entropy, backward, SGD with momentum and weight decay) built from the same seed on
// the CPU and, moved with Module.To, on the GPU. Loss, every parameter gradient, every updated
// parameter and every BN running statistic must agree within atol 1e-3 / rtol 1e-3 (TF32 off).
using NUnit.Framework;
using ResidualEngine.Models;
using ResidualEngine.Nn;
using ResidualEngine.Nn.Optim;

namespace ResidualEngine.Tests.Backends.Cuda;

[Category("Gpu")]
public class CudaResNetTests : GpuTestBase
{
    private static Tensor TrainStep(Module model, Tensor x, Tensor labels)
    {
        model.Train();
        using var sgd = Sgd.ForModule(model, lr: 0.1, momentum: 0.9, weightDecay: 1e-4);
        var loss = Ops.SoftmaxCrossEntropy(model.Forward(x), labels);
        loss.Backward();
        sgd.Step();
        return loss;
    }

    [Test]
    public void ResNet18TrainingStepMatchesCpu()
    {
        using var cpuModel = ModelZoo.Create("resnet18", seed: 0);
        using var gpuModel = ModelZoo.Create("resnet18", seed: 0);
        gpuModel.To(Dev);
        Assert.That(gpuModel.Device, Is.EqualTo(Dev));

        var rng = new Random(41);
        var x = Tensor.Randn(new Shape(8, 3, 64, 64), rng);
        var labels = Tensor.FromArray(Enumerable.Range(0, 8).Select(_ => (long)rng.Next(1000)).ToArray(), new Shape(8));

        var cpuLoss = TrainStep(cpuModel, x, labels);
        var gpuLoss = TrainStep(gpuModel, x.To(Dev), labels.To(Dev));
        Near(gpuLoss, cpuLoss, "loss");

        var gpuParams = gpuModel.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor);
        int compared = 0;
        foreach (var (name, p) in cpuModel.NamedParameters())
        {
            var g = gpuParams[name];
            Assert.That(p.Grad, Is.Not.Null, name);
            Assert.That(g.Grad, Is.Not.Null, name);
            Near(g.Grad!, p.Grad!, "grad " + name);
            Near(g, p, "updated " + name);
            compared++;
        }
        Assert.That(compared, Is.EqualTo(62), "every ResNet-18 parameter tensor was compared");

        var gpuBuffers = gpuModel.NamedBuffers().ToDictionary(b => b.Name, b => b.Tensor);
        foreach (var (name, b) in cpuModel.NamedBuffers())
        {
            if (b.DType.IsFloat()) Near(gpuBuffers[name], b, "buffer " + name);
            else Exact(gpuBuffers[name], b, "buffer " + name);
        }
    }
}
