// `residual bench data` on a tiny synthetic ImageFolder: it reads through the project's loader,
// writes its JSON, and rejects a missing folder with a message that names it.
using System.Text.Json;
using NUnit.Framework;
using ResidualEngine.Data;
using ResidualEngine.Tools.Cli;

namespace ResidualEngine.Tests.Tools;

public class BenchDataTests
{
    [Test]
    public void MeasuresTheInputPipeline()
    {
        var dir = Path.Combine(Path.GetTempPath(), "residual-benchdata-" + Guid.NewGuid().ToString("N"));
        try
        {
            SyntheticImageNet.Generate(dir, new SyntheticImageNet.Options(Classes: 2, TrainPerClass: 8, ValPerClass: 1, Size: 16));
            var json = Path.Combine(dir, "out.json");
            int rc = CliApp.Run(["bench", "data", "--data", dir, "--workers", "1", "--batch-size", "4", "--image-size", "16", "--warmup", "1", "--json", json]);
            Assert.That(rc, Is.Zero);
            using var doc = JsonDocument.Parse(File.ReadAllText(json));
            Assert.That(doc.RootElement.GetProperty("images").GetInt32(), Is.EqualTo(16), "the train split is read");
            Assert.That(doc.RootElement.GetProperty("images_per_sec").GetDouble(), Is.GreaterThan(0));
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    [Test]
    public void MissingFolderIsNamed()
    {
        var e = Assert.Throws<ArgumentException>(() => CliApp.Run(["bench", "data", "--data", "/no/such/folder"]));
        Assert.That(e!.Message, Does.Contain("/no/such/folder"));
    }
}
