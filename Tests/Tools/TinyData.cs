// A tiny synthetic ImageNet-style folder (4 classes, 16 px) for training tests.
using ResidualEngine.Training;

namespace ResidualEngine.Tests.Tools;

internal static class TinyData
{
    /// <summary>Generates the set under <paramref name="root"/>/data and returns its path.</summary>
    public static string Make(string root, int classes = 4, int trainPerClass = 16, int valPerClass = 6, int size = 16)
    {
        var o = new TrainOptions { SynthClasses = classes, SynthTrainPerClass = trainPerClass, SynthValPerClass = valPerClass, SynthSize = size, SynthSeed = 5 };
        return TrainingSetup.EnsureData(o, TextWriter.Null, Path.Combine(root, "data"));
    }
}
