// What one training run holds while it runs, and how it is built: device, data and loaders,
// model, optimizer, schedule, run directory files and checkpoint store; for a resumed run, the
// checkpoint is verified, checked against the options (same model, classes) and restored.
// In a data-parallel job (Trainer.Distributed.cs) every rank builds the same state on its share of
// the data; only rank 0 touches the run directory.
using ResidualEngine.Data;
using ResidualEngine.Distributed;
using ResidualEngine.Models;
using ResidualEngine.Nn.Optim;

namespace ResidualEngine.Training;

public sealed partial class Trainer
{
    private sealed class RunState : IDisposable
    {
        public required Device Device { get; init; }
        public required string ModelName { get; init; }
        public required ResNet Model { get; init; }
        public required IOptimizer Optimizer { get; init; }
        public required TrainingStep Step { get; init; }
        public required LrSchedule Schedule { get; init; }
        public required DataLoader TrainLoader { get; init; }
        public required DataLoader ValLoader { get; init; }
        public required IReadOnlyList<string> Classes { get; init; }
        public required int NumClasses { get; init; }
        public required int ImageSize { get; init; }
        public required int StepsPerEpoch { get; init; }
        public required RunFiles Files { get; init; }
        public required CheckpointStore Store { get; init; }
        public StepMeter Meter { get; } = new();
        /// <summary>TensorBoard event file of this process (null when turned off or before training starts).</summary>
        public TensorBoard.EventFileWriter? Board { get; set; }
        /// <summary>Gradient averaging across ranks (null in a single process).</summary>
        public Distributed.DistributedDataParallel? DataParallel { get; set; }
        public CheckpointInfo? Resumed { get; init; }
        public int StartEpoch { get; init; } = 1;
        public int StartStep { get; init; }
        public long GlobalStep { get; set; }
        public double BestValTop1 { get; set; } = double.NegativeInfinity;
        public double LastEvalSeconds { get; set; }

        public static RunState Open(Trainer t)
        {
            var o = t._o;
            var log = t._log;
            string modelName = TrainingSetup.CanonicalModel(o.Model);
            var device = TrainingSetup.ResolveDevice(o.Device);
            var root = t.InTurns(() => TrainingSetup.EnsureData(o, log, t.SyntheticRoot));
            var val = TrainingSetup.OpenVal(root);
            ImageFolder? train = null;
            if (!o.EvalOnly)
            {
                train = ImageFolder.Open(Path.Combine(root, "train"));
                TrainingSetup.CheckSameClasses(train.Classes, val.Classes, $"data '{root}' train/ and val/");
            }
            var classes = (train ?? val).Classes;
            int imageSize = TrainingSetup.ResolveImageSize(o.ImageSize, modelName, o.Synthetic ? o.SynthSize : null);
            o.ImageSize = imageSize;

            // Resume: read and verify the checkpoint before anything is written to the run directory.
            CheckpointInfo? info = null;
            Serialization.SafeTensorsFile? ckpt = null;
            if (t.ResumeFrom is { } from)
            {
                (info, ckpt) = CheckpointStore.Load(from);
                if (info is null)
                {
                    ckpt.Dispose();
                    throw new CheckpointException($"'{from}' has no .json beside it, so it holds weights only and cannot be resumed (use `residual eval` to evaluate it)");
                }
                if (!string.Equals(info.Model, modelName, StringComparison.Ordinal) || info.NumClasses != classes.Count)
                {
                    ckpt.Dispose();
                    throw new ArgumentException($"option --resume: the checkpoint is for {info.Model} with {info.NumClasses} classes, but this run is {modelName} with {classes.Count} classes");
                }
                if (info.Classes.Count > 0 && !info.Classes.SequenceEqual(classes, StringComparer.Ordinal))
                {
                    ckpt.Dispose();
                    throw new ArgumentException("option --resume: the checkpoint was trained on other class folders than this data set's");
                }
            }

            var model = TrainingSetup.CreateModel(modelName, classes.Count, o.Seed, o.DropPath);
            IOptimizer? opt = null;
            DataLoader? trainLoader = null, valLoader = null;
            try
            {
                // A resumed run's weights come from its checkpoint; --weights only starts a fresh one.
                if (info is null && o.Weights is not null) log.WriteLine(Pretrained.Load(model, o.Weights).Description);
                var freeze = o.Freeze ? Pretrained.FreezeBackbone(model) : null;
                model.To(device);
                opt = TrainingSetup.CreateOptimizer(model, o);
                var schedule = LrSchedule.Create(new LrScheduleSpec(o.Schedule, o.Lr, o.Epochs, o.WarmupEpochs)
                {
                    Milestones = o.LrSteps.Length > 0 ? o.LrSteps : null, StepSize = o.LrStepSize, Gamma = o.LrGamma, MinLr = o.LrMin,
                    Patience = o.PlateauPatience, WarmupDecay = o.WarmupDecay,
                    WarmupMethod = o.WarmupMethod == "constant" ? WarmupMethod.Constant : WarmupMethod.Linear,
                });
                if (schedule is StepLr step && o.Schedule == "multisteplr") o.LrSteps = step.Milestones.ToArray();
                if (info is not null && ckpt is not null)
                {
                    var modelState = ckpt.Tensors.Where(kv => !kv.Key.StartsWith(CheckpointStore.OptimizerPrefix, StringComparison.Ordinal))
                        .ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
                    var optState = ckpt.Tensors.Where(kv => kv.Key.StartsWith(CheckpointStore.OptimizerPrefix, StringComparison.Ordinal))
                        .ToDictionary(kv => kv.Key[CheckpointStore.OptimizerPrefix.Length..], kv => kv.Value, StringComparer.Ordinal);
                    model.LoadStateDict(modelState);
                    opt.LoadState(optState, info.OptimizerSteps);
                    if (info.Schedule is { Count: > 0 } st && info.ScheduleKind == schedule.Kind) schedule.LoadState(st);
                }

                if (t.Distributed && val.Count < t.WorldSize)
                    throw new ArgumentException($"the val set has {val.Count} images, fewer than the {t.WorldSize} processes that share it");
                var valData = TrainingSetup.EvalDataset(val, imageSize, o.MaxImagePixels, o.Augment);
                valLoader = TrainingSetup.Loader(valData, o.BatchSize, train: false, o.Seed, o.Workers, device, t.SamplerFor(valData, train: false));
                // Eval-only runs have no train split to read; the val loader stands in so the state is complete.
                if (train is not null)
                {
                    var trainData = TrainingSetup.TrainDataset(train, imageSize, o.ResolvedMinCropScale, o.MaxImagePixels, o.Augment);
                    trainLoader = TrainingSetup.Loader(trainData, o.BatchSize, train: true, o.Seed, o.Workers, device, t.SamplerFor(trainData, train: true));
                }
                else trainLoader = valLoader;
                int steps = o.MaxStepsPerEpoch > 0 ? Math.Min(o.MaxStepsPerEpoch, trainLoader.BatchesPerEpoch) : trainLoader.BatchesPerEpoch;

                t.RunDir = o.Out ?? Path.Combine("runs", $"{modelName}-{DateTime.Now:yyyyMMdd-HHmmss}");
                if (t.Distributed) t.RunDir = t.ProcessGroup!.BroadcastString(t.RunDir, 0)!; // rank 0's clock names it
                var files = new RunFiles(t.RunDir);
                var store = new CheckpointStore(t.RunDir, t.CheckpointWriter);
                if (t.IsLeader && info is null && !o.EvalOnly && (store.Exists(CheckpointStore.Last) || File.Exists(files.MetricsPath)))
                    throw new ArgumentException($"option --out: '{t.RunDir}' already holds a run; continue it with --resume {t.RunDir}, or choose another --out");

                var trainingStep = new TrainingStep(model, opt, TrainingStep.CrossEntropy(o.LabelSmoothing));
                if (freeze is not null) trainingStep.Hooks.Add(freeze);
                if (o.ClipGradNorm > 0) trainingStep.Hooks.Add(new ClipGradNormHook(o.ClipGradNorm));
                string? rederived = null;
                int startStep = info is null ? 0 : RederiveStep(info, o.BatchSize, t.WorldSize, steps, out rederived);
                var state = new RunState
                {
                    Device = device, ModelName = modelName, Model = model, Optimizer = opt, Schedule = schedule,
                    Step = trainingStep,
                    TrainLoader = trainLoader, ValLoader = valLoader, Classes = classes, NumClasses = classes.Count,
                    ImageSize = imageSize, StepsPerEpoch = steps, Files = files, Store = store, Resumed = info,
                    StartEpoch = info?.Epoch ?? 1, StartStep = startStep, GlobalStep = info?.GlobalStep ?? 0,
                    BestValTop1 = info?.BestValTop1 ?? double.NegativeInfinity,
                };
                if (info is not null)
                {
                    t.History.AddRange(info.History.Where(r => r.Epoch < state.StartEpoch));
                    t.BestEpoch = info.BestEpoch;
                    state.LastEvalSeconds = 0;
                    if (rederived is not null) log.WriteLine($"resume: {rederived}");
                    if (!o.EvalOnly && t.IsLeader)
                    {
                        files.TruncateSteps(info.GlobalStep);
                        TensorBoard.EventFileWriter.TruncateAfter(t.RunDir, info.GlobalStep);
                        files.WriteEpochs(t.History);
                    }
                    log.WriteLine($"resuming {modelName} from {t.ResumeFrom} at epoch {state.StartEpoch}" +
                        (state.StartStep > 0 ? $" step {state.StartStep}" : "") + $" (global step {state.GlobalStep})");
                }
                state.DataRoot = root;
                state.DataParallel = t.AttachDataParallel(model, trainingStep);
                if (state.DataParallel is not null)
                    state.Meter.Reduce = v => t.ProcessGroup!.AllReduce(v.AsSpan(), ReduceOp.Sum);
                return state;
            }
            catch
            {
                if (!ReferenceEquals(trainLoader, valLoader)) trainLoader?.Dispose();
                valLoader?.Dispose();
                opt?.Dispose();
                model.Dispose();
                throw;
            }
            finally
            {
                ckpt?.Dispose();
            }
        }

        public string DataRoot { get; private set; } = "";

        /// <summary>config.json: the resolved options plus what the run found (device, data, sizes).</summary>
        public void WriteConfig(TrainOptions o) => Files.WriteConfig(RunConfig(o, this, DataRoot));

        private static System.Text.Json.Nodes.JsonObject RunConfig(TrainOptions o, RunState s, string root)
        {
            var j = o.ToJson();
            j["_run"] = new System.Text.Json.Nodes.JsonObject
            {
                ["device"] = s.Device.ToString(),
                ["data_root"] = Path.GetFullPath(root),
                ["classes"] = s.NumClasses,
                ["train_images"] = s.TrainLoader.Dataset.Count,
                ["val_images"] = s.ValLoader.Dataset.Count,
                ["steps_per_epoch"] = s.StepsPerEpoch,
                ["parameters"] = s.Model.ParameterCount(),
                ["min_crop_scale"] = o.ResolvedMinCropScale,
            };
            return j;
        }

        public void Dispose()
        {
            Board?.Dispose();
            DataParallel?.Dispose();
            Meter.Dispose();
            if (!ReferenceEquals(TrainLoader, ValLoader)) TrainLoader.Dispose();
            ValLoader.Dispose();
            Optimizer.Dispose();
            Model.Dispose();
        }
    }
}
