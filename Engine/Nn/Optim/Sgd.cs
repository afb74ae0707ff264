// Stochastic gradient descent with momentum, Nesterov and weight decay, as torch.optim.SGD.
// STUB: to be implemented on IBackend.SgdUpdate (one fused pass per parameter).
namespace ResidualEngine.Nn.Optim;

/// <summary>A set of parameters sharing hyper-parameters (e.g. BN and bias without weight decay).</summary>
public sealed record ParamGroup(IReadOnlyList<Tensor> Parameters, double WeightDecay);
