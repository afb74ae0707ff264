// `residual bench data`: the input pipeline alone. Reads an ImageFolder (or its train/ split)
// through the training transform (decode + RandomResizedCrop + flip + normalise) with the
// project's DataLoader and reports decoded-and-augmented images per second, so a slow step
// can be blamed on the model or on the input.
using System.Diagnostics;
using System.Globalization;
using ResidualEngine.Data;
using ResidualEngine.Tools.Cli;

namespace ResidualEngine.Tools.Bench;

public static class DataBench
{
    public static int Run(Args a)
    {
        ArgumentNullException.ThrowIfNull(a);
        var dir = a.String("data") ?? throw new ArgumentException("bench data needs --data DIR (an ImageFolder, or a folder with train/ and val/)");
        int workers = a.Int("workers", Math.Max(1, Environment.ProcessorCount - 1), 0, 256);
        int batch = a.Int("batch-size", 64, 1, 65536);
        int size = a.Int("image-size", 224, 8, 4096);
        int batches = a.Int("batches", 0, 0, 1_000_000);
        int warmup = a.Int("warmup", 2, 0, 1000);
        var transform = a.Choice("transform", "train", "train", "eval", "cifar");
        var json = a.String("json");
        a.RejectUnknown();
        if (!Directory.Exists(dir)) throw new ArgumentException($"bench data: --data directory '{dir}' does not exist");

        var folder = Directory.Exists(Path.Combine(dir, "train")) ? ImageFolder.Open(Path.Combine(dir, "train")) : ImageFolder.Open(dir);
        ITransform t = transform switch
        {
            "eval" => new EvalTransform(size),
            "cifar" => new CifarTransform(size, train: true),
            _ => new TrainTransform(size),
        };
        using var loader = new DataLoader(new ImageFolderDataset(folder, t), new DataLoaderOptions(batch, Shuffle: true, Seed: 0, Workers: workers));
        int total = batches > 0 ? Math.Min(batches + warmup, loader.BatchesPerEpoch) : loader.BatchesPerEpoch;
        warmup = Math.Min(warmup, Math.Max(0, total - 1));
        Console.WriteLine($"residual bench data: {folder.Count} images in {folder.Classes.Count} classes under {folder.Root}; " +
            $"{transform} transform to {size}px, batch {batch}, {workers} workers, {total} batches ({warmup} warm-up)");

        var perBatch = new List<double>();
        long images = 0;
        long start = 0, last = Stopwatch.GetTimestamp();
        int i = 0;
        foreach (var b in loader.Epoch(0))
        {
            using (b)
            {
                long now = Stopwatch.GetTimestamp();
                if (i == warmup) start = now;
                else if (i > warmup) { images += b.Count; perBatch.Add(Stopwatch.GetElapsedTime(last, now).TotalMilliseconds); }
                last = now;
            }
            if (++i >= total) break;
        }
        if (perBatch.Count == 0) throw new ArgumentException($"bench data: too few batches to time ({i}); use more images or a smaller --batch-size");
        double seconds = Stopwatch.GetElapsedTime(start, last).TotalSeconds;
        var s = Summary.Of(perBatch);
        double rate = images / seconds;
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(inv, $"  images/s: {rate:F1} (decoded + augmented, {images} images in {seconds:F2} s)"));
        Console.WriteLine(string.Create(inv, $"  ms/batch: median {s.Median:F1} (p10 {s.P10:F1}, p90 {s.P90:F1}, max {s.Max:F1})"));
        Console.WriteLine(string.Create(inv, $"  worker time {loader.Stats.WorkerTime.TotalSeconds:F2} s, consumer wait {loader.Stats.ConsumerWait.TotalSeconds:F2} s, " +
            $"skipped files {loader.Stats.SkippedSamples}"));
        if (json is not null)
        {
            var text = System.Text.Json.JsonSerializer.Serialize(new
            {
                data = folder.Root, images = folder.Count, workers, batch_size = batch, image_size = size, transform,
                images_per_sec = rate, ms_per_batch = StepTimes.From(s), skipped = loader.Stats.SkippedSamples,
            }, BenchResult.JsonOptions);
            BenchResult.WriteFile(json, text);
            Console.WriteLine($"wrote {json}");
        }
        return 0;
    }
}
