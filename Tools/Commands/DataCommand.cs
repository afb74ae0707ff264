// `residual data`: make synthetic ImageNet-style data (`synth`), import a dataset distributed as
// arrays (`import`: IDX, CIFAR-10; see DataImportCommand) and check an image folder (`check`:
// lists classes and counts, decodes every file and reports the unreadable ones).
using System.Diagnostics;
using ResidualEngine.Data;
using ResidualEngine.Tools.Cli;

namespace ResidualEngine.Tools.Commands;

public static class DataCommand
{
    private const string Usage = """
        usage: residual data synth --out DIR [--classes 10] [--train-per-class 100] [--val-per-class 20]
                                   [--size 64] [--seed 0] [--quality 90]
               residual data import --from SOURCE --out DIR [--classes NAMES]   (--help for more)
               residual data check --root DIR

          synth   write DIR/train/<class>/*.jpg and DIR/val/<class>/*.jpg (skipped when DIR already
                  holds the same dataset, see DIR/manifest.json)
          import  MNIST-family IDX files or a CIFAR-10 archive into DIR/train/<class>/*.png and
                  DIR/val/<class>/*.png (the official test split)
          check   list the classes of an image folder (DIR/<class>/... or DIR/train + DIR/val) and
                  decode every image, reporting the unreadable ones
        """;

    public static int Run(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            Console.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }
        var a = new Args(args[1..]);
        if (args[0] == "import") return DataImportCommand.Run(a);
        if (a.Help)
        {
            Console.WriteLine(Usage);
            return 0;
        }
        switch (args[0])
        {
            case "synth": return Synth(a);
            case "check": return Check(a);
            default:
                Console.Error.WriteLine($"residual data: unknown subcommand '{args[0]}'\n\n{Usage}");
                return 2;
        }
    }

    private static int Synth(Args a)
    {
        var output = a.String("out") ?? throw new ArgumentException("option --out DIR is required");
        var o = new SyntheticImageNet.Options(
            Classes: a.Int("classes", 10, 2, 10000),
            TrainPerClass: a.Int("train-per-class", 100, 1),
            ValPerClass: a.Int("val-per-class", 20, 0),
            Size: a.Int("size", 64, 8, 1024),
            Seed: a.Int("seed", 0),
            Quality: a.Int("quality", 90, 1, 100));
        a.RejectUnknown();
        if (a.Positional.Count > 0) throw new ArgumentException($"unexpected argument '{a.Positional[0]}'");
        var r = SyntheticImageNet.Generate(output, o, Console.WriteLine);
        if (!r.Reused) Console.WriteLine($"{r.Root}: {r.TrainImages} train + {r.ValImages} val images");
        return 0;
    }

    private static int Check(Args a)
    {
        var root = a.String("root") ?? (a.Positional.Count == 1 ? a.Positional[0] : null)
            ?? throw new ArgumentException("option --root DIR is required");
        a.RejectUnknown();
        var folders = new List<(string Name, ImageFolder Folder)>();
        if (Directory.Exists(Path.Combine(root, "train")))
        {
            var (train, val) = ImageFolder.OpenSplits(root);
            folders.Add(("train", train));
            folders.Add(("val", val));
        }
        else
        {
            folders.Add(("all", ImageFolder.Open(root)));
        }
        int bad = 0;
        var sw = Stopwatch.StartNew();
        foreach (var (name, f) in folders)
        {
            var counts = f.CountsPerClass();
            Console.WriteLine($"{name}: {f.Count} images in {f.Classes.Count} classes ({f.Root}); per class min {counts.Min()}, max {counts.Max()}");
            var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
            Parallel.ForEach(f.Samples, s =>
            {
                try
                {
                    using var img = EncodedImage.Open(s.Path);
                    img.Decode();
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    failures.Add(e.Message);
                }
            });
            foreach (var m in failures.Order(StringComparer.Ordinal)) Console.WriteLine($"  unreadable: {m}");
            bad += failures.Count;
        }
        Console.WriteLine($"checked in {sw.Elapsed.TotalSeconds:F1} s: {bad} unreadable file{(bad == 1 ? "" : "s")}");
        return bad == 0 ? 0 : 1;
    }
}
