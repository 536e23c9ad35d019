"""The `blit-daemon` command line, called in-process: --help, and the configuration and usage
errors that exit 1 with one line on stderr before the server starts."""

from __future__ import annotations

import pytest

from blit_daemon import cli


@pytest.fixture(autouse=True)
def no_default_config(tmp_path, monkeypatch):
    """Keep a real /etc/blit/config.toml on the test machine out of these tests."""
    monkeypatch.setattr(cli, "DEFAULT_CONFIG_PATH", str(tmp_path / "no-such-config.toml"))


def test_help_exits_0_and_describes_the_options(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    for text in ("--root", "--bind", "--port", "--config", "exit codes", "cannot bind"):
        assert text in out


def test_version_exits_0(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.startswith("blit-daemon ")


@pytest.mark.parametrize("argv", [["--port", "x"], ["--no-such-flag"], ["extra"]])
def test_usage_errors_exit_1(capsys, argv):
    with pytest.raises(SystemExit) as caught:
        cli.main(argv)
    assert caught.value.code == 1
    assert capsys.readouterr().err.startswith("blit-daemon: error: ")


def test_a_bad_config_file_exits_1_with_one_line_naming_it(tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_text("[daemon]\nport = \"x\"\n")
    assert cli.main(["--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert err == f"blit-daemon: error: {config}: daemon.port: expected an integer, got 'x'\n"


def test_a_missing_config_file_exits_1(tmp_path, capsys):
    missing = tmp_path / "absent.toml"
    assert cli.main(["--config", str(missing), "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"blit-daemon: error: {missing}: cannot read the config file")
    assert err.count("\n") == 1


def test_root_to_a_missing_directory_exits_1(tmp_path, capsys):
    missing = tmp_path / "nothing"
    assert cli.main(["--root", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err == f"blit-daemon: error: --root: {str(missing)!r} is not an existing directory\n"


def test_nothing_to_export_exits_1(capsys):
    assert cli.main([]) == 1
    assert "no module to export" in capsys.readouterr().err


def test_a_bad_port_flag_exits_1(tmp_path, capsys):
    assert cli.main(["--root", str(tmp_path), "--port", "70000"]) == 1
    assert "--port: expected a port from 0 to 65535" in capsys.readouterr().err


def test_the_default_config_file_is_read_when_present(tmp_path, monkeypatch, capsys):
    default = tmp_path / "default.toml"
    default.write_text("[daemon]\ncolour = 1\n")
    monkeypatch.setattr(cli, "DEFAULT_CONFIG_PATH", str(default))
    assert cli.main([]) == 1
    assert f"{default}: daemon.colour: unknown key" in capsys.readouterr().err
