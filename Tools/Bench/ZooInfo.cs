// The benchmarks' view of the model zoo: build a model by name, its native input size and class
// count, and its multiply-accumulates per image at the benchmarked size (shape tracing, so the
// figure is exact for any image size, not scaled from the native one).
using ResidualEngine.Models;

namespace ResidualEngine.Tools.Bench;

public static class ZooInfo
{
    public sealed record Info(string Name, int NativeImageSize, int DefaultClasses);

    /// <summary>Throws ArgumentException (with suggestions) for a name the zoo does not know.</summary>
    public static Info Of(string name)
    {
        var d = ModelZoo.Describe(name);
        return new Info(d.Name, d.InputSize, d.Config.NumClasses);
    }

    public static ResNet Create(string name, int numClasses, int seed) => ModelZoo.Create(name, numClasses, seed);

    /// <summary>Forward GMACs (convolutions and linear layers) for one image of the given size.</summary>
    public static double GMacsPerImage(ResNet model, int imageSize)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.ForwardMacs(imageSize) / 1e9;
    }
}
