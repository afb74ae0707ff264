// The README's C# examples stay true: every ```csharp block preceded by the marker comment is
// compiled with Roslyn as a program of its own (top-level statements, the SDK's implicit usings)
// against the assemblies under test, and must compile without errors or warnings. The library
// run the first example shows is also run here, on tiny data, through the same public API.
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using NUnit.Framework;
using ResidualEngine.Training;

namespace ResidualEngine.Tests.Tools;

public class ReadmeExampleTests
{
    public const string Marker = "<!-- compiled by Tests/Tools/ReadmeExampleTests.cs -->";

    private static string Readme => Path.Combine(AppContext.BaseDirectory, "README.md");

    /// <summary>The code blocks that follow the marker, in order.</summary>
    public static List<string> MarkedBlocks(string markdown)
    {
        var blocks = new List<string>();
        var lines = markdown.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            if (lines[i].Trim() != Marker) continue;
            int start = i + 1;
            if (start >= lines.Length || lines[start].Trim() != "```csharp")
                throw new FormatException($"README line {i + 1}: the marker must be followed by a ```csharp block");
            int end = Array.FindIndex(lines, start + 1, l => l.Trim() == "```");
            if (end < 0) throw new FormatException($"README line {start + 1}: the code block is not closed");
            blocks.Add(string.Join("\n", lines[(start + 1)..end]));
            i = end;
        }
        return blocks;
    }

    private static IEnumerable<MetadataReference> References()
    {
        var tpa = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        var ours = new[] { typeof(Tensor), typeof(ResidualEngine.Models.ModelZoo), typeof(ResidualEngine.Data.DataLoader), typeof(Trainer), typeof(Microsoft.ML.OnnxRuntime.InferenceSession) }
            .Select(t => t.Assembly.Location);
        return tpa.Where(p => Path.GetFileName(p).StartsWith("System.", StringComparison.Ordinal) || Path.GetFileName(p) is "mscorlib.dll" or "netstandard.dll")
            .Concat(ours).Distinct().Select(p => MetadataReference.CreateFromFile(p));
    }

    private const string ImplicitUsings = """
        global using System;
        global using System.Collections.Generic;
        global using System.IO;
        global using System.Linq;
        global using System.Net.Http;
        global using System.Threading;
        global using System.Threading.Tasks;
        """;

    [Test]
    public void TheReadmeHasMarkedExamples() =>
        Assert.That(MarkedBlocks(File.ReadAllText(Readme)), Has.Count.GreaterThanOrEqualTo(2));

    [Test]
    public void EveryMarkedReadmeExampleCompiles()
    {
        var blocks = MarkedBlocks(File.ReadAllText(Readme));
        var refs = References().ToList();
        var options = new CSharpCompilationOptions(OutputKind.ConsoleApplication, nullableContextOptions: NullableContextOptions.Enable);
        var parse = new CSharpParseOptions(LanguageVersion.Latest);
        for (int i = 0; i < blocks.Count; i++)
        {
            var compilation = CSharpCompilation.Create($"ReadmeExample{i}",
                [CSharpSyntaxTree.ParseText(ImplicitUsings, parse), CSharpSyntaxTree.ParseText(blocks[i], parse, path: $"README example {i + 1}")],
                refs, options);
            using var pe = new MemoryStream();
            var result = compilation.Emit(pe);
            var problems = result.Diagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning && d.Id != "CS8019").Select(d => d.ToString()).ToList();
            Assert.That(problems, Is.Empty, $"README example {i + 1}:\n{blocks[i]}");
            Assert.That(result.Success, Is.True);
        }
    }

    [Test, NonParallelizable]
    public void TheLibraryRunOfTheReadmeTrainsAndWritesItsRunDirectory()
    {
        var root = Directory.CreateTempSubdirectory("readme-run-").FullName;
        var cwd = Environment.CurrentDirectory;
        try
        {
            var data = TinyData.Make(root);
            var output = new StringWriter();
            var trainer = new Trainer(new TrainOptions
            {
                Data = data, Model = "resnet20", Epochs = 2, BatchSize = 16, Lr = 0.1, Schedule = "cosine", Out = Path.Combine(root, "run"),
                ImageSize = 16, Device = "cpu", Workers = 1, LogEvery = 2,
            }, output, new ProgressDisplay(output, interactive: false), StopSignal.Manual());
            Assert.That(trainer.Run(), Is.EqualTo(TrainOutcome.Completed), output.ToString());
            Assert.That(trainer.History.Select(r => r.Epoch), Is.EqualTo(new[] { 1, 2 }));
            Assert.That(trainer.BestEpoch, Is.InRange(1, 2));
            foreach (var f in new[] { "config.json", "metrics.jsonl", "epochs.csv", "last.safetensors", "best.safetensors" })
                Assert.That(File.Exists(Path.Combine(root, "run", f)), Is.True, f);
        }
        finally
        {
            Environment.CurrentDirectory = cwd;
            Directory.Delete(root, recursive: true);
        }
    }

    [Test]
    public void InvalidOptionsFromCodeAreClearErrors()
    {
        var t = new Trainer(new TrainOptions { Epochs = 0 }, TextWriter.Null, new ProgressDisplay(TextWriter.Null, false), StopSignal.Manual());
        Assert.That(() => t.Run(), Throws.ArgumentException.With.Message.Contains("--epochs"));
    }
}
