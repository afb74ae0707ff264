// `residual models`: the table lists every zoo model with its size; --json is a parseable array
// of {name, parameters, gmacs} whose numbers are ModelZoo.Describe's; names filter; bad input
// is a usage error (exit code 2 with the message).
using System.Text.Json;
using NUnit.Framework;
using ResidualEngine.Models;
using ResidualEngine.Tools.Cli;

namespace ResidualEngine.Tests.ToolsCli;

public class ModelsCommandTests
{
    private static (int Rc, string Out) Run(params string[] args)
    {
        using var w = new StringWriter();
        using var e = new StringWriter();
        int rc = CliApp.Run(["models", .. args], w, e);
        return (rc, w.ToString() + e.ToString());
    }

    [Test]
    public void TableListsEveryModel()
    {
        var (rc, text) = Run();
        Assert.That(rc, Is.Zero);
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines[0], Does.Contain("name").And.Contain("parameters").And.Contain("GMACs").And.Contain("input"));
        Assert.That(lines, Has.Length.EqualTo(ModelZoo.Names.Count + 1));
        var r50 = lines.Single(l => l.StartsWith("resnet50 ", StringComparison.Ordinal));
        Assert.That(r50, Does.Contain("25,557,032").And.Contain("4.089").And.Contain("224"));
        Assert.That(lines.Single(l => l.StartsWith("resnet20 ", StringComparison.Ordinal)), Does.Contain("269,722").And.Contain(" 32 "));
    }

    [Test]
    public void JsonIsAnArrayOfNameParametersGmacs()
    {
        var (rc, text) = Run("--json");
        Assert.That(rc, Is.Zero);
        using var doc = JsonDocument.Parse(text);
        var items = doc.RootElement.EnumerateArray().ToList();
        Assert.That(items.Select(i => i.GetProperty("name").GetString()), Is.EqualTo(ModelZoo.Names));
        var r18 = items.Single(i => i.GetProperty("name").GetString() == "resnet18");
        Assert.That(r18.GetProperty("parameters").GetInt64(), Is.EqualTo(11_689_512L));
        Assert.That(r18.GetProperty("gmacs").GetDouble(), Is.EqualTo(1.814).Within(0.0005));
        Assert.That(r18.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "name", "parameters", "gmacs" }));
    }

    [Test]
    public void NamesFilterAndAcceptAnySpelling()
    {
        var (rc, text) = Run("--json", "ResNet-56", "plain-56");
        Assert.That(rc, Is.Zero);
        using var doc = JsonDocument.Parse(text);
        Assert.That(doc.RootElement.EnumerateArray().Select(i => i.GetProperty("name").GetString()), Is.EqualTo(new[] { "resnet56", "plain56" }));
    }

    [Test]
    public void BadInputIsAUsageError()
    {
        var (rc, text) = Run("resnet19");
        Assert.That(rc, Is.EqualTo(2));
        Assert.That(text, Does.Contain("resnet18"));
        (rc, text) = Run("--jsn");
        Assert.That(rc, Is.EqualTo(2));
        Assert.That(text, Does.Contain("--jsn").And.Contain("did you mean --json"));
    }
}
