// `residual export`: a checkpoint (run directory, .safetensors checkpoint, or a
// PyTorch .pth/.pt) to ONNX (opset 13+, symbolic batch, for ONNX Runtime, TensorRT, ML.NET) or to
// bare safetensors weights with torchvision's names. The work is ModelExport's (Training library).
using System.CommandLine;
using ResidualEngine.Tools.Cli;
using ResidualEngine.Training.Export;

namespace ResidualEngine.Tools.Commands;

public static class ExportCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "a run directory (best, else last), a .safetensors checkpoint or weights, or a PyTorch .pth/.pt", HelpName = "RUN_OR_FILE", Required = true };
        var format = new Option<string>("--format") { Description = "onnx | safetensors", HelpName = "FORMAT", Required = true };
        format.AcceptOnlyFromAmong("onnx", "safetensors");
        var output = new Option<string>("--out") { Description = "the file to write", HelpName = "FILE", Required = true };
        var model = new Option<string>("--model") { Description = "needed only when the weights do not name their model (PyTorch files)", HelpName = "NAME" };
        var imageSize = new Option<int>("--image-size") { Description = "ONNX input height and width; 0 = the size the model was trained at", HelpName = "N", DefaultValueFactory = _ => 0 };
        var opset = new Option<int>("--opset") { Description = $"ONNX operator set ({OnnxExporter.MinOpset}-{OnnxExporter.MaxOpset})", HelpName = "N", DefaultValueFactory = _ => 13 };
        var force = new Option<bool>("--force") { Description = "replace --out if it exists" };
        var ema = new Option<bool>("--ema") { Description = "export the checkpoint's moving average of the weights (a run trained with --model-ema) instead of its weights" };
        OptionRules.ZeroOrRange(imageSize, 8, 1024);
        OptionRules.Range(opset, OnnxExporter.MinOpset, OnnxExporter.MaxOpset);
        var cmd = new Command("export", "Export a checkpoint to ONNX or to bare safetensors weights (torchvision names).")
        {
            checkpoint, format, output, model, imageSize, opset, force, ema,
        };
        cmd.SetAction(parse =>
        {
            var request = new ExportRequest(parse.GetValue(checkpoint)!, parse.GetValue(format) == "onnx" ? ExportFormat.Onnx : ExportFormat.Safetensors, parse.GetValue(output)!)
            {
                Model = parse.GetValue(model),
                ImageSize = parse.GetValue(imageSize),
                Opset = parse.GetValue(opset),
                Force = parse.GetValue(force),
                Ema = parse.GetValue(ema),
            };
            parse.InvocationConfiguration.Output.WriteLine(ModelExport.Run(request));
            return CliApp.Success;
        });
        return cmd;
    }
}
