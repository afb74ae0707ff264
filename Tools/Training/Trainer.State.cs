// What one training run holds while it runs, and how it is built: device, data and loaders,
// model, optimizer, schedule, moving average (--model-ema), run directory files and checkpoint
// store; for a resumed run, the checkpoint is verified, checked against the options (same model,
// classes) and restored. The run directory is locked (RunLock) before anything in it is read for
// resuming or written, and a stop request (Ctrl-C, SIGTERM) ends the setup at once (data
// generation and listing watch it), with nothing written.
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
        public required PrecisionMode Precision { get; init; }
        public required GradScaler Scaler { get; init; }
        public required LrSchedule Schedule { get; init; }
        public required DataLoader TrainLoader { get; init; }
        public required DataLoader ValLoader { get; init; }
        public required IReadOnlyList<string> Classes { get; init; }
        public required int NumClasses { get; init; }
        public required int ImageSize { get; init; }
        public required int StepsPerEpoch { get; init; }
        public required RunFiles Files { get; init; }
        /// <summary>The moving average of the weights (--model-ema), or null.</summary>
        public ModelEma? Ema { get; init; }
        public required CheckpointStore Store { get; init; }
        public StepMeter Meter { get; } = new();
        /// <summary>TensorBoard event file of this process (null when turned off or before training starts).</summary>
        public TensorBoard.EventFileWriter? Board { get; set; }
        /// <summary>Gradient averaging across ranks (null in a single process).</summary>
        public Distributed.DistributedDataParallel? DataParallel { get; set; }
        /// <summary>The epoch's gradient communication so far (data-parallel runs).</summary>
        public CommunicationTally Communication { get; } = new();
        public CheckpointInfo? Resumed { get; init; }
        public int StartEpoch { get; init; } = 1;
        public int StartStep { get; init; }
        public long GlobalStep { get; set; }
        public double BestValTop1 { get; set; } = double.NegativeInfinity;
        public double LastEvalSeconds { get; set; }
        /// <summary>The lock on the run directory, when this state took it (else the caller holds it).</summary>
        public RunLock? OwnLock { get; private set; }
        /// <summary>config.json has been written since a checkpoint of this session was saved.</summary>
        public bool ConfigWritten { get; set; }

        public static RunState Open(Trainer t)
        {
            var o = t._o;
            var log = t._log;
            var cancel = t._stop.Token;
            string modelName = TrainingSetup.CanonicalModel(o.Model);
            var device = TrainingSetup.ResolveDevice(o.Device);
            t.RunDir = o.Out ?? Path.Combine("runs", $"{modelName}-{DateTime.Now:yyyyMMdd-HHmmss}");
            if (t.Distributed) t.RunDir = t.ProcessGroup!.BroadcastString(t.RunDir, 0)!; // rank 0's clock names it
            // A resumed run's directory is locked before its checkpoint is read; a fresh one before it is first written.
            // In a data-parallel job rank 0 holds the lock for every rank (only it writes there).
            RunLock? ownLock = null;
            if (t.ResumeFrom is not null && !o.EvalOnly && t.IsLeader) ownLock = TakeLock(t);
            try
            {
                var state = Open(t, modelName, device, cancel, ref ownLock);
                state.OwnLock = ownLock;
                return state;
            }
            catch
            {
                ownLock?.Dispose();
                throw;
            }
        }

        private static RunLock? TakeLock(Trainer t) =>
            t.Lock is { IsHeld: true } held && string.Equals(held.Directory, Path.GetFullPath(t.RunDir), StringComparison.Ordinal)
                ? null : RunLock.Acquire(t.RunDir);

        private static RunState Open(Trainer t, string modelName, Device device, CancellationToken cancel, ref RunLock? ownLock)
        {
            var o = t._o;
            var log = t._log;
            var root = t.InTurns(() => TrainingSetup.EnsureData(o, log, t.SyntheticRoot, cancel));
            var val = TrainingSetup.OpenVal(root, cancel);
            ImageFolder? train = null;
            if (!o.EvalOnly)
            {
                train = ImageFolder.Open(Path.Combine(root, "train"), null, cancel);
                TrainingSetup.CheckSameClasses(train.Classes, val.Classes, $"data '{root}' train/ and val/");
            }
            var classes = (train ?? val).Classes;
            foreach (var f in new[] { train, val })
                if (f is { Notes.Count: > 0 })
                    log.WriteLine($"data: {f.Notes.Count} entries of {f.Root} left out of the listing (links that loop or lead into another class, " +
                        $"undecodable names), e.g. {f.Notes[0]}; `residual data check` lists them all");
            int imageSize = TrainingSetup.ResolveImageSize(o.ImageSize, modelName, o.Synthetic ? o.SynthSize : null);
            o.ImageSize = imageSize;
            cancel.ThrowIfCancellationRequested();

            // Resume: read and verify the checkpoint before anything is written to the run directory.
            CheckpointInfo? info = null;
            Serialization.SafeTensorsFile? ckpt = null;
            if (t.ResumeFrom is { } from)
            {
                (info, ckpt) = CheckpointStore.Load(from);
                if (info is null)
                {
                    ckpt.Dispose();
                    throw new CheckpointException($"'{from}' holds weights only (no training state), so it cannot be resumed (use `residual eval` to evaluate it, or --weights to start a run from it)");
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
            GradScaler? scaler = null;
            ModelEma? ema = null;
            DataLoader? trainLoader = null, valLoader = null;
            try
            {
                // A resumed run's weights come from its checkpoint; --weights only starts a fresh one.
                if (info is null && o.Weights is not null) log.WriteLine(Pretrained.Load(model, o.Weights).Description);
                var freeze = o.Freeze ? Pretrained.FreezeBackbone(model) : null;
                model.To(device);
                var precision = o.PrecisionMode;
                TrainingSetup.ApplyPrecision(model, device, precision, o.ChannelsLast);
                var format = o.ChannelsLast ? MemoryFormat.ChannelsLast : MemoryFormat.Contiguous;
                scaler = precision.CreateScaler();
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
                    var modelState = ckpt.Tensors.Where(kv => CheckpointStore.IsModelKey(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
                    model.LoadStateDict(modelState);
                    opt.LoadState(CheckpointStore.Section(ckpt.Tensors, CheckpointStore.OptimizerPrefix), info.OptimizerSteps);
                    if (info.Scaler is { } sc && scaler.Enabled) scaler.LoadState(sc.Scale, sc.GrowthTracker, sc.SkippedSteps);
                    if (info.Schedule is { Count: > 0 } st && info.ScheduleKind == schedule.Kind) schedule.LoadState(st);
                }
                if (o.ModelEma)
                {
                    var shadow = TrainingSetup.CreateModel(modelName, classes.Count, o.Seed, o.DropPath);
                    shadow.To(device);
                    shadow.To(format); // the average is updated element for element from the model's tensors
                    ema = new ModelEma(model, shadow, ModelEma.AdjustedDecay(o.ModelEmaDecay, o.BatchSize, o.ModelEmaSteps, o.Epochs), o.ModelEmaSteps, o.WarmupEpochs);
                    if (ckpt is not null)
                    {
                        var saved = CheckpointStore.Section(ckpt.Tensors, CheckpointStore.EmaPrefix);
                        if (saved.Count > 0) ema.LoadState(saved);
                        else log.WriteLine("note: the checkpoint holds no moving average of the weights; --model-ema starts one from its weights");
                    }
                }

                if (t.Distributed && val.Count < t.WorldSize)
                    throw new ArgumentException($"the val set has {val.Count} images, fewer than the {t.WorldSize} processes that share it");
                var valData = TrainingSetup.EvalDataset(val, imageSize, o.MaxImagePixels, o.Augment);
                valLoader = TrainingSetup.Loader(valData, o.BatchSize, train: false, o.Seed, o.Workers, device, sampler: t.SamplerFor(valData, train: false), format: format);
                // Eval-only runs have no train split to read; the val loader stands in so the state is complete.
                if (train is not null)
                {
                    var trainData = TrainingSetup.TrainDataset(train, imageSize, o.ResolvedMinCropScale, o.MaxImagePixels, o.Augment, TrainingSetup.SampleAugmentation(o));
                    trainLoader = TrainingSetup.Loader(trainData, o.BatchSize, train: true, o.Seed, o.Workers, device, TrainingSetup.BatchAugmentation(o),
                        t.SamplerFor(trainData, train: true), format);
                }
                else trainLoader = valLoader;
                int steps = o.MaxStepsPerEpoch > 0 ? Math.Min(o.MaxStepsPerEpoch, trainLoader.BatchesPerEpoch) : trainLoader.BatchesPerEpoch;
                cancel.ThrowIfCancellationRequested();

                var files = new RunFiles(t.RunDir);
                var store = new CheckpointStore(t.RunDir, t.CheckpointWriter);
                if (info is null && !o.EvalOnly && t.IsLeader)
                {
                    ownLock ??= TakeLock(t);
                    PrepareFresh(t.RunDir, store, files, log);
                }

                var trainingStep = new TrainingStep(model, opt, TrainingStep.CrossEntropy(o.LabelSmoothing)) { AutocastType = precision.Autocast, Scaler = scaler };
                if (freeze is not null) trainingStep.Hooks.Add(freeze);
                if (o.ClipGradNorm > 0) trainingStep.Hooks.Add(new ClipGradNormHook(o.ClipGradNorm));
                string? rederived = null;
                int startStep = info is null ? 0 : RederiveStep(info, o.BatchSize, t.WorldSize, steps, out rederived);
                if (ema is not null) trainingStep.Hooks.Add(ema);
                var state = new RunState
                {
                    Device = device, ModelName = modelName, Model = model, Optimizer = opt, Schedule = schedule,
                    Step = trainingStep, Precision = precision, Scaler = scaler,
                    TrainLoader = trainLoader, ValLoader = valLoader, Classes = classes, NumClasses = classes.Count,
                    ImageSize = imageSize, StepsPerEpoch = steps, Files = files, Store = store, Resumed = info, Ema = ema,
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
                        int dropped = files.TruncateSteps(info.GlobalStep);
                        if (dropped > 0)
                            log.WriteLine($"dropped {dropped} row{(dropped == 1 ? "" : "s")} of metrics.jsonl logged after the checkpoint (global step {info.GlobalStep}): they belong to no checkpoint");
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
                ema?.Dispose();
                opt?.Dispose();
                scaler?.Dispose();
                model.Dispose();
                throw;
            }
            finally
            {
                ckpt?.Dispose();
            }
        }

        public string DataRoot { get; private set; } = "";

        /// <summary>
        /// Makes a directory ready for a fresh run. One that holds an intact checkpoint is a run to
        /// resume, not to overwrite; one with checkpoints none of which is intact is refused without
        /// pointing at --resume; one whose run stopped before its first checkpoint is reused, its
        /// metrics rows (which belong to no checkpoint) dropped; a config.json not written by a run is never overwritten.
        /// </summary>
        private static void PrepareFresh(string dir, CheckpointStore store, RunFiles files, TextWriter log)
        {
            var present = store.Present().ToList();
            if (present.Count > 0)
            {
                try
                {
                    CheckpointStore.FindForResume(dir);
                }
                catch (CheckpointException e)
                {
                    throw new ArgumentException($"option --out: '{dir}' holds checkpoints ({string.Join(", ", present.Select(p => p + ".safetensors"))}) " +
                        $"but none can be resumed ({e.Message}); choose another --out, or move them away to start afresh there");
                }
                throw new ArgumentException($"option --out: '{dir}' already holds a run with a checkpoint; continue it with --resume {dir}, or choose another --out");
            }
            if (File.Exists(files.ConfigPath))
            {
                bool ours;
                try { ours = System.Text.Json.Nodes.JsonNode.Parse(IO.SafeFile.ReadAllText(files.ConfigPath, "run config")) is System.Text.Json.Nodes.JsonObject j && j.ContainsKey("_run"); }
                catch (Exception e) when (e is System.Text.Json.JsonException or IOException) { ours = false; }
                if (!ours)
                    throw new ArgumentException($"option --out: '{files.ConfigPath}' was not written by `residual train`, and a run would overwrite it; choose another --out");
            }
            int dropped = files.TruncateSteps(-1);
            TensorBoard.EventFileWriter.TruncateAfter(dir, -1);
            if (dropped > 0)
                log.WriteLine($"{dir}: its run stopped before its first checkpoint; starting afresh there, dropping the {dropped} metrics.jsonl row{(dropped == 1 ? "" : "s")} it logged");
        }

        /// <summary>config.json: the resolved options plus what the run found (device, data, sizes).</summary>
        public void WriteConfig(TrainOptions o) => Files.WriteConfig(RunConfig(o, this, DataRoot));

        public System.Text.Json.Nodes.JsonObject Config(TrainOptions o) => RunConfig(o, this, DataRoot);

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
                ["precision"] = s.Precision.Describe(s.Device),
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
            foreach (var h in Step.Hooks.OfType<ClipGradNormHook>()) h.Dispose();
            Ema?.Dispose();
            Optimizer.Dispose();
            Scaler.Dispose();
            Model.Dispose();
            OwnLock?.Dispose();
        }
    }
}
