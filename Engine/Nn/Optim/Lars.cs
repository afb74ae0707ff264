// LARS (You et al. 2017, "Large Batch Training of Convolutional Networks") as MLPerf's ResNet-50
// reference uses it. For a weight w with gradient g, weight decay wd, trust coefficient eta:
//   trust = eta * |w| / (|g| + wd * |w| + eps)   (1 when |w| or |g| is 0)
//   v = momentum * v + lr * trust * (g + wd * w);   w -= v   (Nesterov: w -= momentum * v + lr * trust * (g + wd * w))
// with |.| the L2 norm of the whole tensor. Parameters of rank <= 1 (BN scales and shifts, biases)
// are excluded, as in MLPerf: no trust ratio and no weight decay (plain momentum SGD, v = m v + lr g).
// Everything runs on the parameter's device: the two norms are device sums, the trust ratio a
// one-element tensor (LarsTrust) that scales g + wd w, so no step waits for the device.
using ResidualEngine.Pointwise;

namespace ResidualEngine.Nn.Optim;

public sealed class Lars : StatefulOptimizer
{
    private readonly bool[] _excluded;

    public Lars(IEnumerable<ParamGroup> groups, double lr, double momentum = 0.9, double eta = 0.001, double eps = 0, bool nesterov = false)
        : base(groups, lr, ["momentum"])
    {
        if (!(momentum >= 0 && momentum < 1)) throw new ArgumentException($"Lars: momentum must be in [0, 1), got {momentum}");
        if (!(eta > 0) || double.IsInfinity(eta)) throw new ArgumentException($"Lars: trust coefficient eta must be positive and finite, got {eta}");
        if (!(eps >= 0) || double.IsInfinity(eps)) throw new ArgumentException($"Lars: eps must be >= 0 and finite, got {eps}");
        if (nesterov && momentum == 0) throw new ArgumentException("Lars: Nesterov momentum needs a momentum above 0");
        Momentum = momentum;
        Eta = eta;
        Eps = eps;
        Nesterov = nesterov;
        _excluded = Parameters.Select(p => p.Rank <= 1).ToArray();
    }

    public double Momentum { get; }
    public double Eta { get; }
    public double Eps { get; }
    public bool Nesterov { get; }

    public static Lars ForModule(Module m, double lr, double momentum = 0.9, double weightDecay = 1e-4, double eta = 0.001, bool nesterov = false)
    {
        ArgumentNullException.ThrowIfNull(m);
        return new Lars(Sgd.GroupsOf(m, weightDecay, noBnWeightDecay: false), lr, momentum, eta, 0, nesterov);
    }

    /// <summary>The trust ratio eta |w| / (|g| + wd |w| + eps), 1 when either norm is 0.</summary>
    public static double TrustRatio(double wNorm, double gNorm, double weightDecay, double eta, double eps) =>
        wNorm > 0 && gNorm > 0 ? eta * wNorm / (gNorm + weightDecay * wNorm + eps) : 1.0;

    protected override void Update(int index, Tensor w, Tensor g, Tensor[] state, long step, double lr, double weightDecay)
    {
        var v = state[0];
        var be = w.Backend;
        var same = Broadcast.Same(w);
        if (_excluded[index])
        {
            // v = m v + lr g; w -= v (Nesterov: w -= m v + lr g).
            be.Map<Axpby>(v, v, g, same, Momentum, lr);
            if (Nesterov)
            {
                be.Map<Axpby>(w, w, v, same, 1, -Momentum);
                be.Map<Axpby>(w, w, g, same, 1, -lr);
            }
            else be.Map<Axpby>(w, w, v, same, 1, -1);
            return;
        }
        // trust = eta |w| / (|g| + wd |w| + eps); t = trust (g + wd w); v = m v + lr t; w -= v (Nesterov: m v + lr t).
        var trust = Ops.Map<LarsTrust>(Ops.Sum(Ops.Mul(w, w)), Ops.Sum(Ops.Mul(g, g)), Tensor.Full(Shape.Scalar, Eps, w.DType, w.Device), Eta, weightDecay);
        var t = Ops.Map<Axpby>(g, w, 1, weightDecay);
        be.Map<Mul>(t, t, trust, Broadcast.All(t), 0, 0);
        be.Map<Axpby>(v, v, t, same, Momentum, lr);
        if (Nesterov)
        {
            be.Map<Axpby>(w, w, v, same, 1, -Momentum);
            be.Map<Axpby>(w, w, t, same, 1, -lr);
        }
        else be.Map<Axpby>(w, w, v, same, 1, -1);
    }
}
