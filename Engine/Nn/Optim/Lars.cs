// LARS (You et al. 2017, "Large Batch Training of Convolutional Networks") as MLPerf's ResNet-50
// reference uses it. For a weight w with gradient g, weight decay wd, trust coefficient eta:
//   trust = eta * |w| / (|g| + wd * |w| + eps)   (1 when |w| or |g| is 0)
//   v = momentum * v + lr * trust * (g + wd * w);   w -= v   (Nesterov: w -= momentum * v + lr * trust * (g + wd * w))
// with |.| the L2 norm of the whole tensor. Parameters of rank <= 1 (BN scales and shifts, biases)
// are excluded, as in MLPerf: no trust ratio and no weight decay (plain momentum SGD, v = m v + lr g).
// The rule runs on the host (see HostOptimizer).
namespace ResidualEngine.Nn.Optim;

public sealed class Lars : HostOptimizer
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

    protected override void Update(int index, double[] w, double[] g, double[][] state, long step, double lr, double weightDecay)
    {
        var v = state[0];
        double scaled = lr, wd = 0;
        if (!_excluded[index])
        {
            double wn = 0, gn = 0;
            for (int i = 0; i < w.Length; i++) { wn += w[i] * w[i]; gn += g[i] * g[i]; }
            wd = weightDecay;
            scaled = lr * TrustRatio(Math.Sqrt(wn), Math.Sqrt(gn), wd, Eta, Eps);
        }
        for (int i = 0; i < w.Length; i++)
        {
            double u = scaled * (g[i] + wd * w[i]);
            v[i] = Momentum * v[i] + u;
            w[i] -= Nesterov ? Momentum * v[i] + u : v[i];
        }
    }
}
