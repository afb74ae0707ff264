// `mpirun -np 2 residual train` end to end on the CPU: two processes with batch 4 and --sync-bn
// train the synthetic set to the same weights, losses and accuracy as one process with batch 8
// (the same global batches: the sampler's shares of one order, augmentation seeded by each
// sample's global position), up to F32 rounding; only rank 0 writes the run directory. (A gentle
// learning rate: with 0.05 the F32 rounding differences of the two summation orders grow to 1e-3
// within a few steps on these 16 px images, which says nothing about correctness; the F64 test in
// DataParallelTests holds the two to 1e-11.)
using System.Globalization;
using NUnit.Framework;
using ResidualEngine.Serialization;

namespace ResidualEngine.Tests.Distributed;

[NonParallelizable]
public class TrainProcessesTests
{
    [Test]
    public void TwoProcessesWithSyncBnTrainLikeOneWithTheDoubledBatch()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"residual-ddp-train-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        try
        {
            string[] common = ["--synth-classes", "2", "--synth-train-per-class", "16", "--synth-val-per-class", "4", "--synth-size", "16",
                "--model", "resnet20", "--epochs", "2", "--workers", "0", "--seed", "4", "--lr", "0.01", "--tensorboard", "false"];
            var two = MpiJob.Run(MpiJob.Mpirun(2, [.. MpiJob.Program("residual"), "train", "--batch-size", "4", "--sync-bn", "--out", Path.Combine(dir, "two"), .. common]), dir);
            Assert.That(two.ExitCode, Is.EqualTo(0), two.ToString());
            Assert.That(two.Output, Does.Contain("data parallel: 2 processes over Open MPI").And.Contain("synchronised batch norm"), two.ToString());
            Assert.That(Count(two.Output, "run directory:"), Is.EqualTo(1), "only rank 0 prints");
            var one = MpiJob.Run([.. MpiJob.Program("residual"), "train", "--batch-size", "8", "--out", Path.Combine(dir, "one"), .. common], dir);
            Assert.That(one.ExitCode, Is.EqualTo(0), one.ToString());

            var rowsTwo = File.ReadAllLines(Path.Combine(dir, "two", "epochs.csv")).Skip(1).Select(Row).ToList();
            var rowsOne = File.ReadAllLines(Path.Combine(dir, "one", "epochs.csv")).Skip(1).Select(Row).ToList();
            Assert.That(rowsTwo, Has.Count.EqualTo(2));
            for (int e = 0; e < 2; e++)
            {
                Assert.That(rowsTwo[e][1], Is.EqualTo(rowsOne[e][1]).Within(1e-4), $"epoch {e + 1} train loss");
                Assert.That(rowsTwo[e][3], Is.EqualTo(rowsOne[e][3]).Within(1e-4), $"epoch {e + 1} val loss");
                Assert.That(rowsTwo[e][4], Is.EqualTo(rowsOne[e][4]), $"epoch {e + 1} val top-1");
            }
            using var a = SafeTensors.Load(Path.Combine(dir, "two", "last.safetensors"));
            using var b = SafeTensors.Load(Path.Combine(dir, "one", "last.safetensors"));
            double worst = 0;
            foreach (var (name, t) in b.Tensors)
            {
                if (!t.DType.IsFloat() || name.StartsWith("optimizer.", StringComparison.Ordinal)) continue;
                var x = a[name].ToDoubles();
                var y = t.ToDoubles();
                for (int i = 0; i < y.Length; i++) worst = Math.Max(worst, Math.Abs(x[i] - y[i]) / (1 + Math.Abs(y[i])));
            }
            TestContext.Out.WriteLine($"largest relative weight difference {worst:E2}");
            Assert.That(worst, Is.LessThan(2e-4), "weights after 2 epochs: 2 x 4 with SyncBN vs 1 x 8");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static double[] Row(string line) => line.Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();

    private static int Count(string text, string what) => (text.Length - text.Replace(what, "", StringComparison.Ordinal).Length) / what.Length;
}
