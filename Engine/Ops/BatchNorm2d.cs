// Batch normalisation. STUB: signature fixed; forward/backward to be implemented.
namespace ResidualEngine;

public static partial class Ops
{
    /// <summary>x (N, C, H, W); gamma, beta, runningMean, runningVar (C). In training, normalises with batch
    /// statistics and updates the running ones in place (momentum 0.1, unbiased variance); otherwise uses the running ones.</summary>
    public static Tensor BatchNorm2d(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        bool training, double momentum = 0.1, double eps = 1e-5) => throw new NotImplementedException();
}
