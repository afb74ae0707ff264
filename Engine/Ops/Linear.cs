// Fully connected layer. STUB: signature fixed; to be implemented.
namespace ResidualEngine;

public static partial class Ops
{
    /// <summary>x (N, in), weight (out, in), bias (out) or null -> x W^T + b, (N, out).</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null) => throw new NotImplementedException();
}
