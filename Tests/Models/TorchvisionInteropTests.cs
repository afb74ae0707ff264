// A real torchvision ResNet (torchvision.models.resnet.ResNet with BasicBlock or Bottleneck,
// one block per stage to stay small), with non-trivial BN statistics, written to safetensors
// by Python, loads strictly into our model of the same configuration with no renaming, and
// gives the same eval-mode logits. Needs /usr/bin/python3 with torch and torchvision; the
// test is ignored (with the reason) where they are missing. One Python start exports both.
using System.Diagnostics;
using NUnit.Framework;
using ResidualEngine.Models;
using ResidualEngine.Serialization;

namespace ResidualEngine.Tests.Models;

public class TorchvisionInteropTests
{
    private const string Script = """
        import json, struct, sys
        try:
            import torch
            from torchvision.models.resnet import ResNet, BasicBlock, Bottleneck
        except Exception as e:
            print("no torch/torchvision: %s" % e); sys.exit(3)

        def save(path, tensors):
            names = {torch.float32: "F32", torch.int64: "I64"}
            header, blobs, off = {}, [], 0
            for k, t in tensors.items():
                b = t.detach().contiguous().numpy().tobytes()
                header[k] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
                blobs.append(b); off += len(b)
            h = json.dumps(header).encode()
            h += b" " * (-len(h) % 8)
            with open(path, "wb") as f:
                f.write(struct.pack("<Q", len(h))); f.write(h)
                for b in blobs: f.write(b)

        out = sys.argv[1]
        torch.manual_seed(0)
        for kind in ("basic", "bottleneck"):
            if kind == "basic":
                m = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=7)
            else:
                m = ResNet(Bottleneck, [1, 1, 1, 1], num_classes=7, groups=2, width_per_group=32)
            with torch.no_grad():
                for mod in m.modules():
                    if isinstance(mod, torch.nn.BatchNorm2d):
                        mod.weight.uniform_(0.5, 1.5); mod.bias.uniform_(-0.2, 0.2)
                        mod.running_mean.uniform_(-0.2, 0.2); mod.running_var.uniform_(0.5, 1.5)
                        mod.num_batches_tracked.fill_(5)
            m.eval()
            x = torch.randn(2, 3, 32, 32)
            with torch.no_grad():
                y = m(x)
            save("%s/%s_weights.safetensors" % (out, kind), m.state_dict())
            save("%s/%s_io.safetensors" % (out, kind), {"x": x, "logits": y})
        """;

    private DirectoryInfo? _dir;
    private string? _skip;

    /// <summary>Runs the export once (one Python start, both models) for every case.</summary>
    [OneTimeSetUp]
    public void Export()
    {
        const string python = "/usr/bin/python3";
        if (!File.Exists(python)) { _skip = $"{python} is not present"; return; }
        _dir = Directory.CreateTempSubdirectory("re-tv-");
        var script = Path.Combine(_dir.FullName, "export.py");
        File.WriteAllText(script, Script);
        var psi = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(script);
        psi.ArgumentList.Add(_dir.FullName);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(180_000)) { p.Kill(true); _skip = "the torchvision export script timed out"; return; }
        if (p.ExitCode == 3) { _skip = $"torchvision unavailable: {stdout.Result.Trim()}"; return; }
        Assert.That(p.ExitCode, Is.Zero, $"export script failed:\n{stderr.Result}");
    }

    [OneTimeTearDown]
    public void CleanUp() => _dir?.Delete(true);

    [TestCase("basic", BlockKind.Basic, 1, 64)]
    [TestCase("bottleneck", BlockKind.Bottleneck, 2, 32)]
    public void TorchvisionWeightsLoadWithoutRenamingAndGiveTheSameLogits(string kind, BlockKind block, int groups, int widthPerGroup)
    {
        if (_skip is not null) Assert.Ignore(_skip);
        var weights = Path.Combine(_dir!.FullName, kind + "_weights.safetensors");
        var io = Path.Combine(_dir.FullName, kind + "_io.safetensors");
        using var scope = TensorScope.Begin();
        var cfg = ModelZoo.Config(block == BlockKind.Basic ? "resnet18" : "resnet50") with
        {
            Name = "tv-" + kind, Layers = [1, 1, 1, 1], Groups = groups, WidthPerGroup = widthPerGroup, NumClasses = 7,
        };
        using var m = new ResNet(cfg, seed: 1);
        Weights.LoadWeights(m, weights, strict: true);
        Assert.That(m.StateDict()["layer3.0.downsample.1.num_batches_tracked"].ToArray<long>(), Is.EqualTo(new long[] { 5 }));
        using var f = SafeTensors.Load(io);
        m.Eval();
        using var ng = ResidualEngine.Autograd.GradMode.NoGrad();
        Close.Assert(m.Forward(f["x"]), f["logits"], 1e-4, 1e-3, $"{kind}: logits vs torchvision");
    }
}
