# ResidualEngine build entry point for PowerShell; the same verbs as build.sh:
#   ./build.ps1 build | test [filter] | train [args] | bench [args] | publish
param([Parameter(Position = 0)][string]$Verb = "help", [Parameter(ValueFromRemainingArguments = $true)][string[]]$Rest)
$ErrorActionPreference = "Stop"
Set-Location $PSScriptRoot
$env:DOTNET_CLI_TELEMETRY_OPTOUT = "1"; $env:DOTNET_NOLOGO = "1"
$Config = if ($env:CONFIG) { $env:CONFIG } else { "Release" }
switch ($Verb) {
  "build" { dotnet build ResidualEngine.sln -c $Config @Rest; exit $LASTEXITCODE }
  "test" {
    $a = @("test", "--project", "Tests", "-c", $Config)
    if ($Rest.Count -gt 0) { $a += @("--filter", $Rest[0]) }
    $out = & dotnet @a 2>&1 | Tee-Object -Variable lines
    $rc = $LASTEXITCODE
    $text = ($lines | Out-String)
    function Count($name) { $m = [regex]::Matches($text, "(?m)^\s*${name}: (\d+)"); if ($m.Count) { [int]$m[$m.Count - 1].Groups[1].Value } else { $null } }
    $total = Count "total"
    if ($null -eq $total) { Write-Output "Tests: 0 passed, 1 failed, 0 skipped"; exit 1 }
    $failed = Count "failed"; $passed = Count "succeeded"; $skipped = Count "skipped"
    Write-Output "Tests: $passed passed, $failed failed, $skipped skipped"
    if ($rc -ne 0 -or $failed -ne 0) { exit 1 }
  }
  "train" { dotnet build Tools -c $Config -v q | Out-Null; dotnet "Tools/bin/$Config/net10.0/residual.dll" train @Rest; exit $LASTEXITCODE }
  "bench" { dotnet build Tools -c $Config -v q | Out-Null; dotnet "Tools/bin/$Config/net10.0/residual.dll" bench compare @Rest; exit $LASTEXITCODE }
  "publish" {
    dotnet publish Tools -c Release -r linux-x64 --self-contained -o .gpu/app
    dotnet publish Tests -c Release -r linux-x64 --self-contained -o .gpu/tests
    tar czf .gpu/app.tgz -C .gpu app tests
    tar czf .gpu/tests.tgz -C .gpu tests
  }
  default { Write-Output "verbs: build, test [filter], train [args], bench [args], publish" }
}
