// The training loop of `residual train`. Per step: the shared TrainingStep at the scheduled LR
// (forward, loss, backward, optimizer step), then the loss and logits go to the StepMeter (read back
// every --log-every steps, not every step). Per epoch: validation, LR-schedule feedback, the
// table row, the files of the run directory, and a checkpoint (`last`, copied to `best` when
// val top-1 improves). Resuming restores weights, BN statistics, momentum buffers, step count,
// schedule state, epoch sums, position and the moving average of the weights (--model-ema, also
// evaluated after every epoch); the data order is a pure function of (seed, epoch),
// so on the CPU a resumed run is bitwise identical to an uninterrupted one. A stop request
// (Ctrl-C, SIGTERM) during setup ends the run with nothing written; during training it finishes
// the step and checkpoints. A non-finite loss stops without saving, so the last good checkpoint
// stays as it was. config.json is written only after a checkpoint made with these options is
// saved (the checkpoint carries them too), so a failed attempt never changes a later --resume.
// The same loop runs on every rank of a data-parallel job (Trainer.Distributed.cs).
using System.Diagnostics;
using ResidualEngine.Data;
using ResidualEngine.Models;
using ResidualEngine.Nn.Optim;

namespace ResidualEngine.Training;

public enum TrainOutcome
{
    Completed = 0,
    Diverged = 1,
    Interrupted = 130,
}

public sealed partial class Trainer
{
    private readonly TrainOptions _o;
    private TextWriter _log;
    private ProgressDisplay _progress;
    private readonly StopSignal _stop;
    // The last values read from the device, shown on the live line until the next read.
    private double _lastLoss = double.NaN, _lastTop1 = double.NaN;

    /// <summary>A run that logs to the console and stops only when it is done (or <see cref="RequestStop"/> is called).</summary>
    public Trainer(TrainOptions options) : this(options, Console.Out, ProgressDisplay.ForConsole(), StopSignal.Manual()) { }

    public Trainer(TrainOptions options, TextWriter log, ProgressDisplay progress, StopSignal stop)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(log);
        ArgumentNullException.ThrowIfNull(progress);
        ArgumentNullException.ThrowIfNull(stop);
        _o = options;
        _log = log;
        _progress = progress;
        _stop = stop;
    }

    /// <summary>Called after every optimizer step with (epoch, step in epoch); tests use it to interrupt.</summary>
    public Action<int, int>? AfterStep { get; set; }
    /// <summary>Serializer for checkpoints (tests inject failing ones); SafeTensors.Write by default.</summary>
    public TensorWriter? CheckpointWriter { get; set; }
    /// <summary>The checkpoint to resume from (set by the command after locating it), or null for a fresh run.</summary>
    public string? ResumeFrom { get; set; }
    /// <summary>Where the synthetic data set lives (its parent folder); "data" by default.</summary>
    public string SyntheticRoot { get; set; } = "data";
    /// <summary>A lock on the run directory that the caller already holds (it took it to choose the checkpoint); else the run takes its own.</summary>
    public RunLock? Lock { get; set; }

    public TrainOptions Options => _o;
    public string RunDir { get; private set; } = "";
    public List<EpochRow> History { get; } = new();
    public int BestEpoch { get; private set; }
    public EvalResult? LastEval { get; private set; }
    /// <summary>The last evaluation of the moving average of the weights (--model-ema), or null.</summary>
    public EvalResult? LastEmaEval { get; private set; }
    public string? DivergenceMessage { get; private set; }

    /// <summary>Asks the run to stop after the current step and save a checkpoint (thread-safe).</summary>
    public void RequestStop(string reason = "requested") => _stop.Request(reason);

    /// <summary>Trains (or evaluates, with EvalOnly) as the options say; returns how the run ended.
    /// In a data-parallel job every rank calls it and gets the same outcome; only rank 0 prints.</summary>
    public TrainOutcome Run()
    {
        if (!IsLeader)
        {
            _log = TextWriter.Null;
            _progress = new ProgressDisplay(TextWriter.Null, interactive: false);
        }
        var outcome = RunAll();
        if (Distributed) ProcessGroup!.Barrier(); // rank 0 has written everything before any rank leaves
        return outcome;
    }

    private TrainOutcome RunAll()
    {
        _o.Validate();
        RequireSameOptions();
        // CPU threads: as asked, or the cores shared out between the processes of this machine.
        int threads = _o.Threads > 0 ? _o.Threads : Distributed ? Math.Max(1, Environment.ProcessorCount / Math.Max(1, ProcessGroup!.LocalSize)) : 0;
        int previousThreads = Backends.Cpu.CpuBackend.Threads;
        if (threads > 0) Backends.Cpu.CpuBackend.Threads = threads;
        try { return RunCore(); }
        finally { Backends.Cpu.CpuBackend.Threads = previousThreads; }
    }

    private TrainOutcome RunCore()
    {
        var total = Stopwatch.StartNew();
        RunState run;
        try
        {
            run = RunState.Open(this);
        }
        catch (OperationCanceledException) when (_stop.IsRequested && !Distributed) // a job's ranks stop together: the launcher's handler ends them
        {
            _progress.Line($"stopped ({_stop.Reason}) during setup, before training started; nothing was saved");
            return TrainOutcome.Interrupted;
        }
        using var owned = run;
        var s = run;
        if (_o.EvalOnly)
        {
            _log.WriteLine($"evaluating {s.ModelName} on {s.ValLoader.Dataset.Count} val images...");
            LastEval = EvaluateAll(s, s.Model, s.Precision.Autocast);
            PrintEval(_log, LastEval);
            if (s.Ema is { } ema)
            {
                LastEmaEval = EvaluateAll(s, ema.Shadow);
                _log.Write("EMA ");
                PrintEval(_log, LastEmaEval);
            }
            return TrainOutcome.Completed;
        }
        if (s.StartEpoch > _o.Epochs)
        {
            _log.WriteLine($"the run in {RunDir} has already finished {s.StartEpoch - 1} epochs; pass --epochs N (N > {s.StartEpoch - 1}) to train further");
            return TrainOutcome.Completed;
        }
        if (_o.TensorBoard && IsLeader) s.Board = new TensorBoard.EventFileWriter(RunDir);
        _log.WriteLine($"training {s.ModelName} ({s.Model.ParameterCount():N0} parameters) on {s.Device}, {s.ImageSize} px crops, " +
            $"{s.TrainLoader.Dataset.Count} train / {s.ValLoader.Dataset.Count} val images, {s.NumClasses} classes, " +
            $"{s.StepsPerEpoch} steps of {_o.BatchSize}{(Distributed ? $" x {WorldSize} processes" : "")} per epoch, {_o.Epochs} epochs, {s.Schedule}");
        _log.WriteLine($"precision: {s.Precision.Describe(s.Device)}{(_o.ChannelsLast ? "; channels-last (NHWC)" : "")}");
        if (Distributed) _log.WriteLine($"data parallel: {WorldSize} processes over {ProcessGroup!.Description}, {s.DataParallel!.Buckets.Count} gradient bucket(s)" +
            (_o.SyncBn ? ", synchronised batch norm" : ", batch norm per process"));
        _log.WriteLine($"run directory: {RunDir}");

        for (int epoch = s.StartEpoch; epoch <= _o.Epochs; epoch++)
        {
            var outcome = TrainEpoch(s, epoch, epoch == s.StartEpoch ? s.StartStep : 0);
            if (outcome is not null) return outcome.Value;
            if (StopAgreed(s))
            {
                _progress.Line($"stopped ({_stop.Reason}) after epoch {epoch}; checkpoint: {s.Store.TensorsPath(CheckpointStore.Last)}; " +
                    $"resume with: residual train --resume {RunDir}");
                return TrainOutcome.Interrupted;
            }
        }
        var best = History.FirstOrDefault(r => r.Epoch == BestEpoch);
        _progress.Line($"done in {ProgressDisplay.FormatSpan(total.Elapsed)}: best val top-1 {100 * (best?.ValTop1 ?? double.NaN):F2}% at epoch {BestEpoch}" +
            (s.Scaler.Enabled ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"; loss scale {s.Scaler.Scale:G}, {s.Scaler.SkippedSteps} step(s) skipped on overflow") : ""));
        return TrainOutcome.Completed;
    }

    /// <summary>One epoch from <paramref name="skip"/> steps in; null to go on, or how the run ended.</summary>
    private TrainOutcome? TrainEpoch(RunState s, int epoch, int skip)
    {
        var meter = s.Meter;
        var clock = Stopwatch.StartNew();
        double secondsBefore = 0;
        if (skip > 0 && s.Resumed is { } info)
        {
            meter.Epoch = info.Partial?.Clone() ?? new EpochSums();
            meter.Window = info.Window?.Clone() ?? new EpochSums();
            meter.WindowSteps = info.WindowSteps;
            secondsBefore = info.PartialSeconds;
        }
        else
        {
            meter.Epoch = new EpochSums();
            meter.ResetWindow();
        }
        s.Model.Train();
        if (s.Ema is { } average) average.Epoch = epoch - 1;
        int step = 0, stepsRun = 0, windowImages = 0;
        double windowWaitMs = 0, lr = s.Schedule.LearningRate(epoch - 1, Math.Min(skip, s.StepsPerEpoch - 1), s.StepsPerEpoch);
        var window = Stopwatch.StartNew();
        // A resumed epoch continues the same order where it stopped; the batches already done are not built.
        step = Math.Min(skip, s.StepsPerEpoch);
        if (step < s.StepsPerEpoch)
        {
            foreach (var batch in s.TrainLoader.Epoch(epoch - 1, step))
            {
                using (batch)
                {
                    if (s.DataParallel is { } ddp) ddp.StopRequested = _stop.IsRequested; // this rank's vote, counted at the step's synchronisation
                    lr = s.Schedule.LearningRate(epoch - 1, step, s.StepsPerEpoch);
                    s.Model.SeekDropPath(s.GlobalStep); // drop-path masks: a function of (seed, step), so resume is exact
                    using (TensorScope.Begin())
                    {
                        var r = s.Step.Run(batch, lr);
                        meter.Add(s.GlobalStep + 1, r.Loss, r.Logits, batch.Labels, batch.Count);
                    }
                    step++;
                    stepsRun++;
                    s.GlobalStep++;
                    windowImages += batch.Count * WorldSize; // every rank's batch: the rate shown is the job's
                    windowWaitMs += batch.WaitTime.TotalMilliseconds;
                    if (s.DataParallel is { } dp) s.Communication.Add(dp.LastStep);
                }
                AfterStep?.Invoke(epoch, step);
                bool end = step >= s.StepsPerEpoch;
                bool log = s.GlobalStep % _o.LogEvery == 0 || end;
                bool stop = StopAgreed(s) && !end;
                if (log || stop)
                {
                    var r = meter.Flush();
                    if (r.NonFiniteStep is { } bad)
                        return Diverge(s, $"loss became {FormatValue(r.NonFiniteValue)} at epoch {epoch} step {bad - (s.GlobalStep - step)}");
                    if (log)
                    {
                        _lastLoss = meter.Window.MeanLoss;
                        _lastTop1 = meter.Window.Top1;
                        double secs = Math.Max(window.Elapsed.TotalSeconds, 1e-9);
                        var logged = new StepRow(epoch, s.GlobalStep, _lastLoss, _lastTop1, lr, windowImages / secs,
                            windowWaitMs / Math.Max(1, meter.WindowSteps)) { WallTime = RunFiles.Now() };
                        if (IsLeader) s.Files.AppendStep(logged);
                        s.Board?.Scalars(s.GlobalStep, [("train/loss", logged.Loss), ("train/top1", logged.Top1), ("train/lr", lr),
                            ("train/img_per_s", logged.ImagesPerSecond), ("train/data_wait_ms", logged.DataWaitMs)]);
                        meter.ResetWindow();
                    }
                }
                double rate = windowImages / Math.Max(window.Elapsed.TotalSeconds, 1e-9);
                var eta = Eta(s, epoch, step, stepsRun, clock.Elapsed);
                _progress.Report(new ProgressInfo(epoch, _o.Epochs, step, s.StepsPerEpoch, _lastLoss, _lastTop1, lr, rate,
                    windowWaitMs / Math.Max(1, stepsRun), eta), fresh: log);
                if (log)
                {
                    window.Restart();
                    windowImages = 0;
                    windowWaitMs = 0;
                }
                if (stop)
                {
                    SaveCheckpoint(s, epoch, step, "interrupt", secondsBefore + clock.Elapsed.TotalSeconds);
                    _progress.Line($"stopped ({_stop.Reason}) at epoch {epoch} step {step}/{s.StepsPerEpoch}; checkpoint: " +
                        $"{s.Store.TensorsPath(CheckpointStore.Last)}; resume with: residual train --resume {RunDir}");
                    return TrainOutcome.Interrupted;
                }
                if (end) break;
            }
        }
        if (meter.PendingCount > 0)
        {
            var r = meter.Flush();
            if (r.NonFiniteStep is { } bad) return Diverge(s, $"loss became {FormatValue(r.NonFiniteValue)} at epoch {epoch} step {bad - (s.GlobalStep - step)}");
        }

        var val = EvaluateAll(s, s.Model, s.Precision.Autocast);
        LastEval = val;
        if (!double.IsFinite(val.Loss)) return Diverge(s, $"validation loss became {FormatValue(val.Loss)} after epoch {epoch}");
        s.Schedule.OnValidation(val.Top1Error);
        s.LastEvalSeconds = val.Seconds;
        var row = new EpochRow(epoch, meter.Epoch.MeanLoss, meter.Epoch.Top1, val.Loss, val.Top1, val.Top5, lr,
            secondsBefore + clock.Elapsed.TotalSeconds);
        if (IsLeader) s.Files.AppendValidation(new ValRow(epoch, s.GlobalStep, val.Loss, val.Top1, val.Top5, val.Seconds, RunFiles.Now()));
        s.Board?.Scalars(s.GlobalStep, [("val/loss", val.Loss), ("val/top1", val.Top1), ("val/top5", val.Top5),
            ("epoch/train_loss", row.TrainLoss), ("epoch/train_top1", row.TrainTop1), ("epoch/seconds", row.Seconds)]);
        if (s.Ema is { } ema)
        {
            var e = LastEmaEval = EvaluateAll(s, ema.Shadow);
            if (IsLeader) s.Files.AppendValidation(new ValRow(epoch, s.GlobalStep, e.Loss, e.Top1, e.Top5, e.Seconds, RunFiles.Now()), "val_ema");
            s.Board?.Scalars(s.GlobalStep, [("val_ema/loss", e.Loss), ("val_ema/top1", e.Top1), ("val_ema/top5", e.Top5)]);
        }
        History.Add(row);
        bool best = BestEpoch == 0 || val.Top1 > s.BestValTop1;
        if (best)
        {
            BestEpoch = epoch;
            s.BestValTop1 = val.Top1;
        }
        SaveCheckpoint(s, epoch + 1, 0, "epoch", 0);
        if (IsLeader)
        {
            if (best) s.Store.Copy(CheckpointStore.Last, CheckpointStore.Best);
            s.Files.WriteEpochs(History);
            s.Files.WritePlots(History, s.Files.ReadSteps(), s.StepsPerEpoch);
        }
        _progress.EpochRow(row, best);
        if (s.Ema is not null && LastEmaEval is { } ev)
            _progress.Line(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"      EMA of the weights: val loss {ev.Loss:F4}  top-1 {100 * ev.Top1:F2}%  top-5 {100 * ev.Top5:F2}%"));
        if (s.DataParallel is not null) _progress.Line(s.Communication.Summary());
        s.Communication.Reset();
        return null;
    }

    private TimeSpan? Eta(RunState s, int epoch, int step, int stepsRun, TimeSpan epochElapsed)
    {
        if (stepsRun == 0) return null;
        double perStep = epochElapsed.TotalSeconds / stepsRun;
        long remaining = (s.StepsPerEpoch - step) + (long)(_o.Epochs - epoch) * s.StepsPerEpoch;
        double evalSecs = s.LastEvalSeconds * (_o.Epochs - epoch + 1);
        return TimeSpan.FromSeconds(perStep * remaining + evalSecs);
    }

    private TrainOutcome Diverge(RunState s, string what)
    {
        var last = s.Store.Exists(CheckpointStore.Last) ? s.Store.TensorsPath(CheckpointStore.Last)
            : $"none yet (to start again, run with --out {RunDir}: a run directory without a checkpoint is reused)";
        DivergenceMessage = $"{what}; last good checkpoint: {last}";
        _progress.Break();
        if (!IsLeader) return TrainOutcome.Diverged; // every rank saw the same loss; rank 0 says so
        Console.Error.WriteLine($"residual train: {DivergenceMessage}");
        Console.Error.WriteLine("  the run was stopped without saving; try a lower --lr, warmup (--warmup-epochs) or --label-smoothing");
        return TrainOutcome.Diverged;
    }

    private static string FormatValue(double v) => double.IsNaN(v) ? "NaN" : double.IsPositiveInfinity(v) ? "+Inf" : double.IsNegativeInfinity(v) ? "-Inf" : v.ToString("G6", System.Globalization.CultureInfo.InvariantCulture);

    private void SaveCheckpoint(RunState s, int epoch, int stepInEpoch, string reason, double partialSeconds)
    {
        if (!IsLeader) return; // every rank holds the same weights and optimizer state; one writes them
        var info = new CheckpointInfo
        {
            Model = s.ModelName,
            NumClasses = s.NumClasses,
            ImageSize = s.ImageSize,
            Seed = _o.Seed,
            Classes = s.Classes.ToList(),
            Epoch = epoch,
            StepInEpoch = stepInEpoch,
            GlobalStep = s.GlobalStep,
            OptimizerSteps = s.Optimizer.StepCount,
            ScheduleKind = s.Schedule.Kind,
            Schedule = s.Schedule.State().ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal),
            Rng = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["data"] = $"order and augmentation (auto-augment, random erasing included) are a function of (seed {_o.Seed}, epoch, position)",
                ["mix"] = s.TrainLoader.Options.BatchAugmentation is null ? "not used" : $"mixup/cutmix draws a function of (seed {_o.Seed}, epoch, batch index)",
                ["drop_path"] = s.Model.Config.DropPathRate > 0 ? $"masks a function of (seed {_o.Seed}, global step)" : "not used",
            },
            BestValTop1 = s.BestValTop1,
            BestEpoch = BestEpoch,
            History = History.ToList(),
            Partial = stepInEpoch > 0 ? s.Meter.Epoch.Clone() : null,
            Window = stepInEpoch > 0 ? s.Meter.Window.Clone() : null,
            WindowSteps = stepInEpoch > 0 ? s.Meter.WindowSteps : 0,
            PartialSeconds = partialSeconds,
            Reason = reason,
            Precision = s.Precision.Name,
            ChannelsLast = _o.ChannelsLast,
            Scaler = s.Scaler.Enabled ? new ScalerState(s.Scaler.Scale, s.Scaler.GrowthTracker, s.Scaler.SkippedSteps) : null,
            WorldSize = WorldSize,
            BatchSize = _o.BatchSize,
            Config = s.Config(_o),
        };
        // The weights describe themselves (model, classes, input size, normalisation) even without the .json.
        var meta = TrainingSetup.Metadata(s.ModelName, s.Classes, s.ImageSize).ToDictionary();
        meta["residual.epoch"] = (stepInEpoch > 0 ? epoch : epoch - 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
        s.Store.Save(CheckpointStore.Last, TrainingSetup.CheckpointTensors(s.Model, s.Optimizer, s.Ema), info, meta);
        // Only now are these options those of a saved checkpoint: config.json follows (once per session).
        if (!s.ConfigWritten)
        {
            s.WriteConfig(_o);
            s.ConfigWritten = true;
        }
    }

    public static void PrintEval(TextWriter w, EvalResult r)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(r);
        w.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"val: loss {r.Loss:F4}  top-1 {100 * r.Top1:F2}% (error {100 * (1 - r.Top1):F2}%)  top-5 {100 * r.Top5:F2}% (error {100 * (1 - r.Top5):F2}%)  on {r.Samples} images in {r.Seconds:F1} s"));
    }
}
