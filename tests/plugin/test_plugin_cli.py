"""The pytest-dmr command: doctor, models, pull (with progress)."""

from __future__ import annotations

import pytest
from plugin_standin import StandIn

from pytest_dmr.cli import main


def test_doctor_with_a_runner(standin: StandIn, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", standin.url, "doctor"]) == 0
    out = capsys.readouterr().out
    assert f"[   found] url       {standin.url.removeprefix('http://')}: answered as Docker Model Runner" in out
    assert f"runner: Docker Model Runner at {standin.url}/engines/v1" in out
    assert "  models: smollm2\n" in out
    assert out.rstrip().endswith("verdict: ready")


def test_doctor_without_a_runner_says_how_to_fix_it(refused_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", refused_url, "doctor"]) == 3
    out = capsys.readouterr().out
    assert f"[ refused] url       {refused_url.removeprefix('http://')}: connection refused" in out
    assert "  fix: Start one: Docker Desktop: `docker desktop enable model-runner --tcp 12434`" in out
    assert "no Docker at all: the emulator on llama.cpp" in out
    assert "verdict: 1 problem(s), see the fixes above" in out


def test_doctor_reports_a_missing_default_model(standin: StandIn, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DMR_MODEL", "ai/qwen3")
    assert main(["--url", standin.url, "doctor"]) == 1
    assert "missing: the default model ai/qwen3; fix: `pytest-dmr pull ai/qwen3`" in capsys.readouterr().out


def test_models_lists_short_names_and_sizes(standin: StandIn, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", standin.url, "models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["MODEL", "SIZE", "ID"]
    assert lines[1].split() == ["smollm2", "256.35", "MiB", "000000000001"]


def test_models_without_a_runner_exits_3(refused_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", refused_url, "models"]) == 3
    assert capsys.readouterr().out.startswith(f"No runner: {refused_url.removeprefix('http://')} connection refused\n")


def test_pull_shows_progress_then_the_result(standin: StandIn, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", standin.url, "pull", "qwen3"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == ["pulling qwen3: 512 B of 1.00 KiB (50%)", "pulling qwen3: 1.00 KiB of 1.00 KiB (100%)"]
    assert captured.out == "ai/qwen3:latest: Model pulled successfully\n"
    assert standin.count("POST", "/models/create") == 1


def test_pull_on_an_openai_only_server_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with StandIn(openai_only=True) as server:
        assert main(["--url", server.url, "pull", "qwen3"]) == 1
    assert "without model management: it cannot pull" in capsys.readouterr().out


def test_a_bad_setting_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--discovery", "lan", "doctor"]) == 2
    assert "pytest-dmr: --dmr-discovery='lan': unknown discovery group 'lan'" in capsys.readouterr().err


def test_a_failed_pull_says_why_on_stderr_naming_the_runner_and_model(capsys: pytest.CaptureFixture[str]) -> None:
    with StandIn(pull_error="no space left on device") as server:
        code = main(["--url", server.url, "pull", "qwen3"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    failure = captured.err.splitlines()[-1]
    assert failure.startswith("pull failed: the runner reported an error while pulling: ")
    assert "no space left on device" in failure
    assert f"(runner {server.url}, model ai/qwen3:latest)" in failure


def test_the_plugin_spellings_of_the_flags_work_and_name_the_source(standin: StandIn, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DMR_MODEL", "smollm2")
    assert main(["--dmr-url", standin.url, "--dmr-timeout", "5", "doctor"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("settings: mode auto, model smollm2 (from DMR_MODEL), discovery ")
    assert f", url {standin.url} (from --dmr-url)\n" in out


def test_doctor_reads_the_ini_file_pytest_would_read_here(standin: StandIn, tmp_path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pytest.ini").write_text(f"[pytest]\ndmr_mode = mock\ndmr_url = {standin.url}\ndmr_model = ai/from-ini\n")
    monkeypatch.chdir(tmp_path)
    main(["doctor"])
    assert capsys.readouterr().out.startswith(
        f"settings: mode mock, model ai/from-ini (from dmr_model (ini)), discovery url,compose,host,desktop, "
        f"url {standin.url} (from dmr_url (ini))\n")


def test_doctor_puts_the_environment_above_the_ini(standin: StandIn, tmp_path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\ndmr_mode = "mock"\ndmr_model = "smollm2"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DMR_MODE", "live")
    assert main(["--url", standin.url, "doctor"]) == 0
    assert capsys.readouterr().out.startswith("settings: mode live, model smollm2 (from dmr_model (ini))")


def test_doctor_reports_a_bad_ini_value_as_pytest_would(tmp_path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\ndmr_mode = sometimes\n")
    monkeypatch.chdir(tmp_path)
    assert main(["doctor"]) == 2
    assert capsys.readouterr().err == "pytest-dmr: dmr_mode (ini)='sometimes' is not valid. Use one of: auto, live, mock, off\n"


def test_options_also_come_after_the_subcommand(standin: StandIn, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--url", standin.url]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[0] == "smollm2"
    assert main(["--timeout", "7", "doctor", "--url", standin.url]) == 0  # before and after mix
    assert f", url {standin.url} (from --dmr-url)" in capsys.readouterr().out


def test_models_lists_every_tag(standin: StandIn, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", standin.url, "pull", "smollm2:360M-Q4_K_M"]) == 0
    capsys.readouterr()
    assert main(["--url", standin.url, "models"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert "smollm2" in names and "smollm2:360M-Q4_K_M" in names


def test_help_lists_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "exit codes: 0 done; 1 a problem found" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("command", [["models"], ["models", "--running"], ["pull", "qwen3"]])
def test_a_runner_gone_after_discovery_exits_3_as_no_runner(command: list[str], refused_url: str, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_dmr import cli
    from pytest_dmr.discovery import Discovery
    from pytest_dmr.protocol import addresses

    gone = Discovery(address=addresses.parse_runner_url(refused_url), kind="dmr", source="--dmr-url")
    monkeypatch.setattr(cli, "discover", lambda settings: gone)  # found, then stopped before the command's call
    assert main(["--url", refused_url, *command]) == 3
    assert "refused" in capsys.readouterr().err
