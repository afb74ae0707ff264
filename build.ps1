# ResidualEngine build entry point for PowerShell. Verbs:
#   ./build.ps1 build            restore and build everything (Release)
#   ./build.ps1 test [filter]    build and run every test (the Gpu category under the CPU emulator when no GPU is present); ends with "Tests: N passed, N failed, N skipped"
#   ./build.ps1 train [args]     the main job: train a small ResNet on synthetic data (or pass residual train options)
#   ./build.ps1 bench [args]     benchmarks: ours and PyTorch's side by side when Python+torch is present
#   ./build.ps1 fashion-mnist [DIR]  Fashion-MNIST (Debian's dataset-fashion-mnist) as an ImageFolder in DIR (data/fashion-mnist)
#   ./build.ps1 publish          one self-contained linux-x64 bundle of `residual` and the tests, .gpu/bundle.tgz (for a GPU box without .NET)
#   ./build.ps1 help             this list
# Exit codes: 0 success, 1 a build, test or command failed (compiler errors are shown), 2 no or unknown verb.
# build.sh has the same verbs, exit codes and output.
param([Parameter(Position = 0)][string]$Verb = "", [Parameter(ValueFromRemainingArguments = $true)][string[]]$Rest = @())
$ErrorActionPreference = "Stop"
Set-Location $PSScriptRoot
$env:DOTNET_CLI_TELEMETRY_OPTOUT = "1"; $env:DOTNET_NOLOGO = "1"; $env:DOTNET_SKIP_FIRST_TIME_EXPERIENCE = "1"
$Config = if ($env:CONFIG) { $env:CONFIG } else { "Release" }

function Usage {
  Get-Content $PSCommandPath | Select-Object -Skip 1 | ForEach-Object -Begin { $go = $true } -Process {
    if ($go -and $_ -match '^#') { $_ -replace '^# ?', '' } else { $go = $false }
  }
}

function Need-Dotnet {
  if (-not (Get-Command dotnet -ErrorAction SilentlyContinue)) {
    [Console]::Error.WriteLine("build.ps1: the .NET 10 SDK is required (dotnet not on PATH)"); exit 2
  }
}

# Builds the residual tool quietly; on failure shows the compiler's output (dotnet prints errors
# on stdout) on stderr and stops with exit code 1.
function Build-Tools {
  $log = & dotnet build Tools -c $Config -v q -nologo 2>&1 | Out-String
  if ($LASTEXITCODE -ne 0) {
    [Console]::Error.Write($log)
    [Console]::Error.WriteLine("build.ps1: building Tools failed (errors above)")
    exit 1
  }
}

$Residual = "Tools/bin/$Config/net10.0/residual.dll"
switch ($Verb) {
  "fashion-mnist" {
    Need-Dotnet
    $dir = "/usr/share/datasets/fashion-mnist"
    if (-not (Test-Path "$dir/train-images-idx3-ubyte*")) {
      [Console]::Error.WriteLine("build.ps1: WARNING: Fashion-MNIST is not in $dir (Debian: apt-get install dataset-fashion-mnist)"); exit 1
    }
    Build-Tools
    $out = if ($Rest.Count -gt 0) { $Rest[0] } else { "data/fashion-mnist" }
    & dotnet $Residual data import --from $dir --out $out; exit $LASTEXITCODE
  }
  "build" { Need-Dotnet; & dotnet build ResidualEngine.sln -c $Config @Rest; exit $LASTEXITCODE }
  "test" {
    Need-Dotnet
    & dotnet build ResidualEngine.sln -c $Config -v q -nologo
    if ($LASTEXITCODE -ne 0) { [Console]::Error.WriteLine("build.ps1: the build failed (errors above)"); Write-Output "Tests: 0 passed, 1 failed, 0 skipped"; exit 1 }
    $script:sum = @{ passed = 0; failed = 0; skipped = 0; rc = 0 }
    # Runs the test executable once (streaming its output) and adds its counts to the sums.
    function Run-Tests([string[]]$extra) {
      $log = New-TemporaryFile
      & dotnet test --project Tests -c $Config --no-build @extra 2>&1 | Tee-Object -FilePath $log
      $rc = $LASTEXITCODE
      $text = Get-Content $log -Raw
      Remove-Item $log
      function Count($name) { $m = [regex]::Matches("$text", "(?m)^\s*${name}: (\d+)"); if ($m.Count) { [int]$m[$m.Count - 1].Groups[1].Value } else { $null } }
      $failed = [int](Count "failed")
      if ($null -eq (Count "total")) { [Console]::Error.WriteLine("build.ps1: a test run did not complete"); $failed += 1 }
      $script:sum.passed += [int](Count "succeeded"); $script:sum.failed += $failed; $script:sum.skipped += [int](Count "skipped")
      if ($rc -ne 0) { $script:sum.rc = $rc }
    }
    $gpu = (Get-Command nvidia-smi -ErrorAction SilentlyContinue) -and ((& nvidia-smi -L 2>$null) -ne $null)
    if ($Rest.Count -gt 0) { Run-Tests @("--filter", $Rest[0]) }
    elseif ($gpu) { Write-Output "build.ps1: a GPU is present: the Gpu category runs on it"; Run-Tests @() }
    else {
      # No GPU: the Gpu category runs against the CPU emulator (Tools/gpu/emu: Linux, g++ >= 12, NVRTC), else it is skipped loudly.
      Run-Tests @("--filter", "TestCategory!=Gpu")
      $emu = Join-Path ([IO.Path]::GetTempPath()) ("residual-emu-" + [Guid]::NewGuid())
      if (-not $IsLinux -or -not (Get-Command g++ -ErrorAction SilentlyContinue)) {
        [Console]::Error.WriteLine("build.ps1: WARNING: the GPU emulator needs Linux and g++ >= 12: the GPU tests are SKIPPED")
        Run-Tests @("--filter", "TestCategory=Gpu")
      } else {
        & bash Tools/gpu/emu/build.sh $emu *> "$emu.log"
        if ($LASTEXITCODE -ne 0) {
          [Console]::Error.Write((Get-Content "$emu.log" -Raw))
          [Console]::Error.WriteLine("build.ps1: WARNING: the GPU emulator did not build (log above): the GPU tests are SKIPPED")
          Run-Tests @("--filter", "TestCategory=Gpu")
        } else {
          Write-Output "build.ps1: running the Gpu category against the CPU emulator (not a GPU run)"
          $env:RESIDUAL_CUDA_LIB_DIR = "$emu/lib"; $env:RESIDUAL_KERNEL_CACHE = "$emu/kernel-cache"
          try { Run-Tests @("--filter", "TestCategory=Gpu") } finally { Remove-Item Env:RESIDUAL_CUDA_LIB_DIR, Env:RESIDUAL_KERNEL_CACHE }
        }
        Remove-Item -Recurse -Force $emu, "$emu.log" -ErrorAction SilentlyContinue
      }
    }
    # On an AVX-512 machine the runs above took the AVX-512 kernels only: run the CPU kernel tests
    # again as a machine without it would (DOTNET_EnableAVX512F=0: the AVX2 paths), as build.sh does.
    $avx512 = $false
    try { $avx512 = [System.Runtime.Intrinsics.X86.Avx512F]::IsSupported } catch { }
    if ($Rest.Count -eq 0 -and $avx512) {
      Write-Output "build.ps1: running the CPU kernel tests again without AVX-512 (DOTNET_EnableAVX512F=0: the AVX2 paths)"
      $env:DOTNET_EnableAVX512F = "0"
      try { Run-Tests @("--filter", "(FullyQualifiedName~.Backends.|FullyQualifiedName~.Ops.|FullyQualifiedName~.Nn.|FullyQualifiedName~.Models.|FullyQualifiedName~.Autograd.)&TestCategory!=Gpu") }
      finally { Remove-Item Env:DOTNET_EnableAVX512F }
    }
    Write-Output "Tests: $($script:sum.passed) passed, $($script:sum.failed) failed, $($script:sum.skipped) skipped"
    if ($script:sum.rc -ne 0 -or $script:sum.failed -ne 0) { exit 1 }
  }
  "train" { Need-Dotnet; Build-Tools; & dotnet $Residual train @Rest; exit $LASTEXITCODE }
  "bench" { Need-Dotnet; Build-Tools; & dotnet $Residual bench compare @Rest; exit $LASTEXITCODE }
  "publish" {
    Need-Dotnet
    # One self-contained linux-x64 folder for the GPU machine, the app and the tests sharing one runtime (as build.sh).
    Remove-Item -Recurse -Force .gpu/bundle, .gpu/bundle.tgz -ErrorAction SilentlyContinue
    & dotnet publish Tests -c Release -r linux-x64 --self-contained -o .gpu/bundle -v q -nologo; if ($LASTEXITCODE -ne 0) { exit 1 }
    & dotnet publish Tools -c Release -r linux-x64 --self-contained -o .gpu/bundle -p:PublishReadyToRun=false -v q -nologo; if ($LASTEXITCODE -ne 0) { exit 1 }
    Get-ChildItem .gpu/bundle -Include onnxruntime.dll, onnxruntime_providers_shared.dll, "libonnxruntime*.so", "Microsoft.CodeAnalysis*.dll", "*.pdb" -Recurse | Remove-Item
    & tar czf .gpu/bundle.tgz -C .gpu bundle; if ($LASTEXITCODE -ne 0) { exit 1 }
    $size = (Get-Item .gpu/bundle.tgz).Length
    Write-Output "build.ps1: .gpu/bundle packed as .gpu/bundle.tgz ($([int]($size / 1MB)) MiB); run it with Tools/gpu/first-run.sh"
    if ($size -gt 56MB) { [Console]::Error.WriteLine("build.ps1: WARNING: .gpu/bundle.tgz is over 56 MiB: with the working tree it may not fit the GPU machine's 64 MiB transfer"); exit 1 }
  }
  { $_ -in "help", "-h", "--help" } { Usage }
  "" { [Console]::Error.WriteLine("build.ps1: which verb?"); Usage | ForEach-Object { [Console]::Error.WriteLine($_) }; exit 2 }
  default { [Console]::Error.WriteLine("build.ps1: unknown verb '$Verb'"); Usage | ForEach-Object { [Console]::Error.WriteLine($_) }; exit 2 }
}
