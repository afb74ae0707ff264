// `residual data`: make synthetic ImageNet-style data (`synth`), import a dataset distributed as
// arrays (`import`: IDX, CIFAR-10; see DataImportCommand) and check an image folder (`check`:
// lists classes and counts, decodes every file and reports the unreadable ones).
using System.Diagnostics;
using ResidualEngine.Data;
using System.CommandLine;
using ResidualEngine.Tools.Cli;

namespace ResidualEngine.Tools.Commands;

public static class DataCommand
{
    public static Command Create()
    {
        var output = new Option<string>("--out") { Description = "where to write DIR/train/<class>/*.jpg and DIR/val/<class>/*.jpg", HelpName = "DIR", Required = true };
        var classes = OptionRules.Range(new Option<int>("--classes") { Description = "number of classes", HelpName = "N", DefaultValueFactory = _ => 10 }, 2, 10000);
        var train = OptionRules.Range(new Option<int>("--train-per-class") { Description = "training images per class", HelpName = "N", DefaultValueFactory = _ => 100 }, 1, int.MaxValue);
        var val = OptionRules.Range(new Option<int>("--val-per-class") { Description = "validation images per class", HelpName = "N", DefaultValueFactory = _ => 20 }, 0, int.MaxValue);
        var size = OptionRules.Range(new Option<int>("--size") { Description = "image side in pixels", HelpName = "N", DefaultValueFactory = _ => 64 }, 8, 1024);
        var seed = new Option<int>("--seed") { Description = "seed of the images", HelpName = "N", DefaultValueFactory = _ => 0 };
        var quality = OptionRules.Range(new Option<int>("--quality") { Description = "JPEG quality", HelpName = "Q", DefaultValueFactory = _ => 90 }, 1, 100);
        var synth = new Command("synth", "Write a synthetic ImageNet-style data set (skipped when DIR already holds the same one, see DIR/manifest.json).")
        {
            output, classes, train, val, size, seed, quality,
        };
        synth.SetAction(parse =>
        {
            var o = new SyntheticImageNet.Options(parse.GetValue(classes), parse.GetValue(train), parse.GetValue(val), parse.GetValue(size),
                parse.GetValue(seed), parse.GetValue(quality));
            var r = SyntheticImageNet.Generate(parse.GetValue(output)!, o, Console.WriteLine);
            if (!r.Reused) Console.WriteLine($"{r.Root}: {r.TrainImages} train + {r.ValImages} val images");
            return 0;
        });

        var rootOpt = new Option<string>("--root") { Description = "the image folder (DIR/<class>/... or DIR/train + DIR/val)", HelpName = "DIR" };
        var rootArg = new Argument<string?>("DIR") { Description = "the image folder, as --root", Arity = ArgumentArity.ZeroOrOne };
        var maxPixels = new Option<long>("--max-image-pixels")
        {
            Description = "images whose header claims more pixels count as unreadable (default: PIL's limit)", HelpName = "N",
            DefaultValueFactory = _ => EncodedImage.DefaultMaxPixels,
        };
        maxPixels.Validators.Add(r => { if (r.Tokens.Count > 0 && r.GetValueOrDefault<long>() < 1) r.AddError("option --max-image-pixels must be at least 1"); });
        var check = new Command("check", "List the classes of an image folder and decode every image; list every unreadable file with its reason (exit 1 if any).") { rootOpt, rootArg, maxPixels };
        check.SetAction(parse =>
        {
            var root = parse.GetValue(rootOpt) ?? parse.GetValue(rootArg)
                ?? throw new UsageException("which folder? give --root DIR (or DIR)");
            return CheckFolder(root, parse.GetValue(maxPixels), Console.Out);
        });
        var import = new Command("import", "MNIST-family IDX files or a CIFAR-10 archive into DIR/train/<class>/*.png and DIR/val/<class>/*.png (the official test split).\n" +
            "Writes DIR/README.txt and DIR/manifest.json (every file written, and the sources' SHA-256); refuses a non-empty folder it did not write.")
        {
            BenchCommand.Value("--from", "a folder with IDX files (MNIST, Fashion-MNIST, KMNIST, EMNIST; .gz or not), or CIFAR-10: cifar-10-python.tar.gz, cifar-10-binary.tar.gz, or their extracted folder", "SOURCE"),
            BenchCommand.Value("--out", "a new or empty folder, or one this command wrote before (a repeat with the same source is a no-op)", "DIR"),
            BenchCommand.Value("--classes", "class names by label: fashion-mnist, mnist, kmnist, cifar10, a file with one name per line, or a comma-separated list (default: from the source)", "NAMES"),
            BenchCommand.Value("--prefix", "which dataset of a folder holding several (EMNIST: emnist-balanced, ...)", "P"),
            BenchCommand.Value("--transpose", "auto (default: only for EMNIST), yes or no", "A"),
            BenchCommand.Value("--format", "auto (default), idx or cifar10", "F"),
            BenchCommand.Value("--threads", "PNG encoding threads (0 = all cores)", "N"),
            new Argument<string?>("SOURCE") { Description = "as --from", Arity = ArgumentArity.ZeroOrOne },
        };
        import.SetAction(parse => DataImportCommand.Run(CliApp.ToArgs(parse)));
        return new Command("data", "Make synthetic ImageNet-style data, import IDX or CIFAR-10 data, or check an image folder.") { synth, import, check };
    }

    /// <summary>`data check`: every bad file with its reason (read and decoded as training does); 1 when there is any, else 0.</summary>
    public static int CheckFolder(string root, long maxPixels, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(output);
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
            output.WriteLine($"{name}: {f.Count} images in {f.Classes.Count} classes ({f.Root}); per class min {counts.Min()}, max {counts.Max()}");
            foreach (var note in f.Notes) output.WriteLine($"  listing: {note}");
            var failures = ImageCheck.Run(f, maxPixels);
            foreach (var b in failures) output.WriteLine($"  unreadable: {b.Path}: {b.Reason}");
            bad += failures.Count;
        }
        output.WriteLine($"checked in {sw.Elapsed.TotalSeconds:F1} s: {bad} unreadable file{(bad == 1 ? "" : "s")}");
        return bad == 0 ? 0 : 1;
    }
}
