// `residual data import`: a dataset distributed as arrays (MNIST-family IDX files, CIFAR-10's
// python or binary archive) into an ImageFolder of PNGs with train/ and val/ (the official test
// split), which every other command reads. The format is found from the source: a folder of IDX
// files, or a CIFAR-10 archive / folder. See Engine/Data/Import/DatasetImporter.cs.
using ResidualEngine.Data.Import;
using ResidualEngine.Tools.Cli;

namespace ResidualEngine.Tools.Commands;

public static class DataImportCommand
{
    public const string Usage = """
        usage: residual data import --from SOURCE --out DIR [--classes NAMES] [--prefix P] [--transpose auto|yes|no] [--threads N]

          SOURCE   a folder with IDX files (MNIST, Fashion-MNIST, KMNIST, EMNIST; .gz or not), e.g.
                   /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist), or CIFAR-10:
                   cifar-10-python.tar.gz, cifar-10-binary.tar.gz, or their extracted folder
          DIR      a new or empty folder, or one this command wrote before (a repeat with the same
                   source is a no-op); any other folder is refused and left untouched
          --classes NAMES     class names by label: fashion-mnist, mnist, kmnist, cifar10, a file with one
                              name per line, or a comma-separated list. Default: an EMNIST mapping file
                              when present, Fashion-MNIST's names when the path says "fashion", KMNIST's
                              for "kmnist", CIFAR-10's from its archive, else the label numbers
          --prefix P          which dataset of a folder holding several (EMNIST: emnist-balanced, ...)
          --transpose A       swap rows and columns (auto: only for EMNIST, which stores images transposed)
          --format F          auto (default), idx or cifar10
          --threads N         PNG encoding threads (0 = all cores)

        Writes DIR/train/<label>_<class>/<index>.png and DIR/val/... (lossless; <index> = position in the
        source file), DIR/README.txt and DIR/manifest.json (every file written, and the sources' SHA-256).
        """;

    public static int Run(Args a)
    {
        ArgumentNullException.ThrowIfNull(a);
        if (a.Help)
        {
            Console.WriteLine(Usage);
            return 0;
        }
        var source = a.String("from") ?? (a.Positional.Count == 1 ? a.Positional[0] : null)
            ?? throw new ArgumentException("option --from SOURCE is required (a folder of IDX files, or a CIFAR-10 archive or folder)");
        var output = a.String("out") ?? throw new ArgumentException("option --out DIR is required");
        var classes = a.String("classes") is { } c ? ClassNames.Resolve(c) : null;
        var prefix = a.String("prefix");
        bool? transpose = a.Choice("transpose", "auto", "auto", "yes", "no") switch { "yes" => true, "no" => false, _ => null };
        var format = a.Choice("format", "auto", "auto", "idx", "cifar10");
        int threads = a.Int("threads", 0, 0, 1024);
        a.RejectUnknown();
        if (a.Positional.Count > (a.String("from") is null ? 1 : 0)) throw new ArgumentException($"unexpected argument '{a.Positional[^1]}'");
        if (!File.Exists(source) && !Directory.Exists(source)) throw new ArgumentException($"option --from: '{source}' does not exist");
        if (format == "auto")
        {
            format = File.Exists(source) || CifarArchive.Recognises(source) ? "cifar10"
                : IdxDataset.Recognises(source) ? "idx"
                : throw new ArgumentException($"option --from: '{source}' holds neither IDX files (train-images-idx3-ubyte[.gz], ...) nor CIFAR-10 batches; see --help");
        }
        if (Path.GetFullPath(output).TrimEnd('/') == Path.GetFullPath(source).TrimEnd('/'))
            throw new ArgumentException("options --from and --out must be different folders");
        try
        {
            var r = format == "idx"
                ? DatasetImporter.ImportIdx(source, output, classes, prefix, transpose, threads, Console.WriteLine)
                : DatasetImporter.ImportCifar10(source, output, classes, threads, Console.WriteLine);
            Console.WriteLine($"{r.Root}: {r.TrainImages:N0} train + {r.ValImages:N0} val images, {r.ClassFolders.Count} classes ({string.Join(", ", r.ClassFolders)})");
            return 0;
        }
        catch (InvalidDataException e)
        {
            // Not an IOException: reported here so that a bad file ends in one clear line.
            Console.Error.WriteLine($"residual data import: error: {e.Message}");
            return 1;
        }
    }
}
