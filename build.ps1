# ResidualEngine build entry point for PowerShell. Verbs:
#   ./build.ps1 build            restore and build everything (Release)
#   ./build.ps1 test [filter]    build and run every test; ends with "Tests: N passed, N failed, N skipped"
#   ./build.ps1 train [args]     the main job: train a small ResNet on synthetic data (or pass residual train options)
#   ./build.ps1 bench [args]     benchmarks: ours and PyTorch's side by side when Python+torch is present
#   ./build.ps1 fashion-mnist [DIR]  Fashion-MNIST (Debian's dataset-fashion-mnist) as an ImageFolder in DIR (data/fashion-mnist)
#   ./build.ps1 publish          self-contained linux-x64 bundles of `residual` and the tests in .gpu/ (for a GPU box without .NET)
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
    $a = @("test", "--project", "Tests", "-c", $Config)
    if ($Rest.Count -gt 0) { $a += @("--filter", $Rest[0]) }
    $log = New-TemporaryFile
    # Streams as it runs (Tee-Object passes each line on) and keeps a copy for the summary.
    & dotnet @a 2>&1 | Tee-Object -FilePath $log
    $rc = $LASTEXITCODE
    $text = Get-Content $log -Raw
    Remove-Item $log
    function Count($name) { $m = [regex]::Matches("$text", "(?m)^\s*${name}: (\d+)"); if ($m.Count) { [int]$m[$m.Count - 1].Groups[1].Value } else { $null } }
    $total = Count "total"
    if ($null -eq $total) {
      [Console]::Error.WriteLine("build.ps1: the test run did not complete (build error above?)")
      Write-Output "Tests: 0 passed, 1 failed, 0 skipped"; exit 1
    }
    $failed = Count "failed"; $passed = Count "succeeded"; $skipped = Count "skipped"
    Write-Output "Tests: $([int]$passed) passed, $([int]$failed) failed, $([int]$skipped) skipped"
    if ($rc -ne 0 -or $failed -ne 0) { exit 1 }
  }
  "train" { Need-Dotnet; Build-Tools; & dotnet $Residual train @Rest; exit $LASTEXITCODE }
  "bench" { Need-Dotnet; Build-Tools; & dotnet $Residual bench compare @Rest; exit $LASTEXITCODE }
  "publish" {
    Need-Dotnet
    Remove-Item -Recurse -Force .gpu/app, .gpu/tests -ErrorAction SilentlyContinue
    & dotnet publish Tools -c Release -r linux-x64 --self-contained -o .gpu/app -p:PublishReadyToRun=false; if ($LASTEXITCODE -ne 0) { exit 1 }
    & dotnet publish Tests -c Release -r linux-x64 --self-contained -o .gpu/tests; if ($LASTEXITCODE -ne 0) { exit 1 }
    & tar czf .gpu/app.tgz -C .gpu app tests; if ($LASTEXITCODE -ne 0) { exit 1 }
    & tar czf .gpu/tests.tgz -C .gpu tests; if ($LASTEXITCODE -ne 0) { exit 1 }
    Write-Output "build.ps1: bundles in .gpu/app and .gpu/tests, packed as .gpu/app.tgz and tests only as .gpu/tests.tgz"
  }
  { $_ -in "help", "-h", "--help" } { Usage }
  "" { [Console]::Error.WriteLine("build.ps1: which verb?"); Usage | ForEach-Object { [Console]::Error.WriteLine($_) }; exit 2 }
  default { [Console]::Error.WriteLine("build.ps1: unknown verb '$Verb'"); Usage | ForEach-Object { [Console]::Error.WriteLine($_) }; exit 2 }
}
