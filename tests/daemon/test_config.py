"""The daemon's TOML configuration: a full valid file, every kind of bad file (each refused with
one line naming the file, the key and the problem), and the command-line overrides."""

from __future__ import annotations

import pytest

from blit_daemon.config import (
    DEFAULT_CONFIG_PATH,
    ConfigError,
    DaemonConfig,
    ModuleConfig,
    apply_overrides,
    load_config,
)


@pytest.fixture
def dirs(tmp_path):
    """Two exportable directories, one reached through a symlink."""
    (tmp_path / "photos").mkdir()
    (tmp_path / "real-music").mkdir()
    (tmp_path / "music").symlink_to(tmp_path / "real-music")
    return tmp_path


def write(tmp_path, text: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return str(path)


def module_table(path, name: str = "m") -> str:
    return f'[[module]]\nname = "{name}"\npath = "{path}"\n'


def test_a_full_config_is_read(dirs):
    path = write(dirs, f"""
[daemon]
bind = "0.0.0.0"
port = 0
motd = "hello"
mdns = false
mdns_name = "nas"
max_sessions = 8
session_timeout = 2.5
grace_period = 0
bwlimit = "50M"
force_grpc_data = true

[[module]]
name = "photos"
path = "{dirs / 'photos'}"
read_only = true
comment = "family photos"

[[module]]
name = "music"
path = "{dirs / 'music'}"
""")
    config = load_config(path)
    assert config == DaemonConfig(
        bind="0.0.0.0",
        port=0,
        motd="hello",
        mdns=False,
        mdns_name="nas",
        max_sessions=8,
        session_timeout=2.5,
        grace_period=0.0,
        bwlimit=50 * 1024 * 1024,
        force_grpc_data=True,
        modules=(
            ModuleConfig("photos", str(dirs / "photos"), read_only=True, comment="family photos"),
            ModuleConfig("music", str(dirs / "real-music")),
        ),
        source=path,
    )
    assert config.module("music") == config.modules[1]
    assert config.module("video") is None


def test_defaults_apply_to_missing_keys(dirs):
    config = load_config(write(dirs, module_table(dirs / "photos")))
    assert config == DaemonConfig(
        modules=(ModuleConfig("m", str(dirs / "photos")),), source=str(dirs / "config.toml")
    )
    assert isinstance(config.session_timeout, float)


def test_an_empty_file_has_no_modules(tmp_path):
    assert load_config(write(tmp_path, "")) == DaemonConfig(source=str(tmp_path / "config.toml"))


def test_integer_seconds_and_bytes_are_accepted(dirs):
    text = "[daemon]\nsession_timeout = 5\ngrace_period = 1\nbwlimit = 1000\n"
    config = load_config(write(dirs, text + module_table(dirs / "photos")))
    assert (config.session_timeout, config.grace_period, config.bwlimit) == (5.0, 1.0, 1000)


@pytest.mark.parametrize(
    ("daemon", "key", "problem"),
    [
        ('colour = "red"', "daemon.colour", "unknown key"),
        ('port = "x"', "daemon.port", "expected an integer, got 'x'"),
        ("port = true", "daemon.port", "expected an integer, got true"),
        ("port = 1.5", "daemon.port", "expected an integer, got 1.5"),
        ("port = -1", "daemon.port", "expected a port from 0 to 65535, got -1"),
        ("port = 65536", "daemon.port", "expected a port from 0 to 65535, got 65536"),
        ("max_sessions = 0", "daemon.max_sessions", "expected at least 1, got 0"),
        ("max_sessions = false", "daemon.max_sessions", "expected an integer, got false"),
        ('mdns = "yes"', "daemon.mdns", "expected true or false, got 'yes'"),
        ("mdns = 1", "daemon.mdns", "expected true or false, got 1"),
        ("force_grpc_data = 0", "daemon.force_grpc_data", "expected true or false, got 0"),
        ("bind = 127", "daemon.bind", "expected a string, got 127"),
        ('bind = ""', "daemon.bind", "must not be empty"),
        ('mdns_name = ""', "daemon.mdns_name", "must not be empty"),
        ("motd = [1]", "daemon.motd", "expected a string, got an array"),
        ("session_timeout = 0", "daemon.session_timeout", "expected more than 0 seconds, got 0"),
        ("session_timeout = true", "daemon.session_timeout", "expected a number of seconds"),
        ("session_timeout = inf", "daemon.session_timeout", "expected a number of seconds"),
        ('session_timeout = "1"', "daemon.session_timeout", "expected a number of seconds"),
        ("grace_period = -1", "daemon.grace_period", "expected 0 seconds or more, got -1"),
        ('bwlimit = "fast"', "daemon.bwlimit", "invalid size 'fast'"),
        ("bwlimit = 0", "daemon.bwlimit", "expected at least 1 byte per second, got 0"),
        ("bwlimit = true", "daemon.bwlimit", "expected a size such as '50M'"),
        ("bwlimit = 1.5", "daemon.bwlimit", "expected a size such as '50M'"),
    ],
)
def test_bad_daemon_values_name_file_key_and_problem(dirs, daemon, key, problem):
    path = write(dirs, f"[daemon]\n{daemon}\n" + module_table(dirs / "photos"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: {key}: {problem}")


@pytest.mark.parametrize(
    ("body", "key", "problem"),
    [
        ("colour = 1\n", "colour", "unknown key"),
        ("daemon = 1\n", "daemon", "expected a [daemon] table, got 1"),
        ('module = "m"\n', "module", "expected [[module]] tables, got 'm'"),
        ("module = [1]\n", "module[1]", "expected a table, got 1"),
        ('[[module]]\nname = "m"\npath = "{d}"\nwritable = true\n', "module[1].writable",
         "unknown key"),
        ('[[module]]\npath = "{d}"\n', "module[1].name", "missing"),
        ('[[module]]\nname = "m"\n', "module[1].path", "missing"),
        ('[[module]]\nname = 5\npath = "{d}"\n', "module[1].name", "expected a string, got 5"),
        ('[[module]]\nname = "-m"\npath = "{d}"\n', "module[1].name",
         "invalid module name '-m'"),
        ('[[module]]\nname = "a/b"\npath = "{d}"\n', "module[1].name",
         "invalid module name 'a/b'"),
        ('[[module]]\nname = "m"\npath = "/nope/nothing"\n', "module[1].path",
         "'/nope/nothing' is not an existing directory"),
        ('[[module]]\nname = "m"\npath = "{f}"\n', "module[1].path",
         "is not an existing directory"),
        ('[[module]]\nname = "m"\npath = "photos"\n', "module[1].path",
         "expected an absolute path, got 'photos'"),
        ('[[module]]\nname = "m"\npath = "{d}"\nread_only = "yes"\n', "module[1].read_only",
         "expected true or false, got 'yes'"),
        ('[[module]]\nname = "m"\npath = "{d}"\ncomment = false\n', "module[1].comment",
         "expected a string, got false"),
        ('[[module]]\nname = "m"\npath = "{d}"\n[[module]]\nname = "x"\npath = "{d}"\n'
         '[[module]]\nname = "m"\npath = "{d}"\n', "module[3].name",
         "duplicate module name 'm'"),
    ],
)
def test_bad_files_name_file_key_and_problem(dirs, body, key, problem):
    (dirs / "file").write_text("not a directory")
    path = write(dirs, body.replace("{d}", str(dirs / "photos")).replace("{f}", str(dirs / "file")))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}: ")
    assert problem in message
    assert "\n" not in message


def test_a_toml_syntax_error_names_the_file_and_the_place(tmp_path):
    path = write(tmp_path, "[daemon]\nport = = 3\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: invalid TOML: ")
    assert "line 2" in message


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(b'[daemon]\nmotd = "\xff"\n')
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(str(path))


def test_a_missing_file_is_a_config_error(tmp_path):
    missing = str(tmp_path / "absent.toml")
    with pytest.raises(ConfigError) as caught:
        load_config(missing)
    assert str(caught.value) == f"{missing}: cannot read the config file: No such file or directory"


def test_a_directory_as_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(str(tmp_path))


def test_the_default_path():
    assert DEFAULT_CONFIG_PATH == "/etc/blit/config.toml"


def test_flags_win_over_the_file(dirs):
    config = load_config(write(dirs, '[daemon]\nbind = "10.0.0.1"\nport = 1\nmdns_name = "a"\n'
                                     + module_table(dirs / "photos")))
    changed = apply_overrides(config, bind="::", port=0, no_mdns=True, mdns_name="b",
                              force_grpc_data=True)
    assert changed == DaemonConfig(
        bind="::", port=0, mdns=False, mdns_name="b", force_grpc_data=True,
        modules=config.modules, source=config.source,
    )


def test_absent_flags_change_nothing(dirs):
    config = load_config(write(dirs, "[daemon]\nmdns = true\nforce_grpc_data = true\n"
                                     + module_table(dirs / "photos")))
    assert apply_overrides(config) == config


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"port": 70000}, "--port: expected a port from 0 to 65535, got 70000"),
        ({"port": -1}, "--port: expected a port from 0 to 65535, got -1"),
        ({"bind": ""}, "--bind: must not be empty"),
        ({"mdns_name": ""}, "--mdns-name: must not be empty"),
    ],
)
def test_bad_flags(dirs, flags, message):
    config = DaemonConfig(modules=(ModuleConfig("m", str(dirs / "photos")),))
    with pytest.raises(ConfigError) as caught:
        apply_overrides(config, **flags)
    assert str(caught.value) == message


def test_root_exports_the_default_module(dirs, monkeypatch):
    monkeypatch.chdir(dirs)
    config = apply_overrides(DaemonConfig(), root="music")
    assert config.modules == (ModuleConfig("default", str(dirs / "real-music")),)
    assert config.module("default") is config.modules[0]


def test_root_must_be_a_directory(tmp_path):
    (tmp_path / "file").write_text("x")
    for root in (str(tmp_path / "missing"), str(tmp_path / "file")):
        with pytest.raises(ConfigError) as caught:
            apply_overrides(DaemonConfig(), root=root)
        assert str(caught.value) == f"--root: {root!r} is not an existing directory"


def test_root_and_configured_modules_conflict(dirs):
    path = write(dirs, module_table(dirs / "photos"))
    with pytest.raises(ConfigError) as caught:
        apply_overrides(load_config(path), root=str(dirs / "music"))
    assert str(caught.value) == (
        f"--root: modules are already configured in {path}; use one or the other"
    )


def test_no_module_at_all_is_an_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        apply_overrides(DaemonConfig(), port=1)
    assert str(caught.value) == (
        "no module to export: give --root PATH or add a [[module]] table"
    )
    path = write(tmp_path, "[daemon]\nport = 1\n")
    with pytest.raises(ConfigError) as caught:
        apply_overrides(load_config(path))
    assert str(caught.value) == (
        f"no module to export: give --root PATH or add a [[module]] table to {path}"
    )
