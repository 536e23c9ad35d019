"""Fuzzing the daemon's config loader: random TOML documents (known and unknown keys, values
of every TOML type, existing and missing paths, a secrets file of random lines), mutated valid
files and random bytes. Each gives a DaemonConfig or a ConfigError, never another exception.
(tests/daemon/test_config.py checks each key's messages one by one.)"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

from helpers.fuzz import fuzz_settings, mutated
from hypothesis import example, given
from hypothesis import strategies as st

from blit_daemon.config import ConfigError, DaemonConfig, load_config

DAEMON_KEYS = ["bind", "port", "motd", "mdns", "mdns_name", "max_sessions", "session_timeout",
               "grace_period", "bwlimit", "force_grpc_data", "secrets_file", "nope"]
MODULE_KEYS = ["name", "path", "read_only", "comment", "auth_users", "nope"]
# "{dir}" stands for a directory that exists, "{secrets}" for the secrets file.
STRINGS = ["{dir}", "{dir}/missing", "{secrets}", "relative", "", "m", "alice", "a:b", "50M",
           "1" * 400, "9P", "/", "/a\0b", "é", "\t"]


def toml_value(value: object) -> str:
    """`value` written as TOML (strings as basic strings, which JSON's escapes fit)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        return {"inf": "inf", "-inf": "-inf", "nan": "nan"}.get(str(value), repr(value))
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return str(value)


scalars = st.one_of(st.sampled_from(STRINGS), st.text(max_size=8), st.booleans(),
                    st.integers(-(1 << 63), (1 << 63) - 1), st.sampled_from([0, 1, 65536, -1]),
                    st.floats(), st.datetimes(max_value=datetime.datetime(9999, 1, 1)))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(MODULE_KEYS), inner, max_size=2),
                      max_leaves=6)


key_values = st.one_of(st.sampled_from(STRINGS), values)


def render(daemon: dict[str, object], modules: list[dict[str, object]]) -> str:
    lines = ["[daemon]", *(f"{key} = {toml_value(v)}" for key, v in daemon.items())]
    for module in modules:
        lines += ["[[module]]", *(f"{key} = {toml_value(v)}" for key, v in module.items())]
    return "\n".join(lines) + "\n"


@st.composite
def documents(draw: st.DrawFn) -> str:
    """Random tables of known (and unknown) keys with random values."""
    daemon = {key: draw(key_values)
              for key in draw(st.lists(st.sampled_from(DAEMON_KEYS), unique=True, max_size=5))}
    modules = [{key: draw(key_values)
                for key in draw(st.lists(st.sampled_from(MODULE_KEYS), unique=True, max_size=5))}
               for _ in range(draw(st.integers(0, 3)))]
    return render(daemon, modules)


@st.composite
def edited_documents(draw: st.DrawFn) -> str:
    """A valid file (a module with a user, the secrets file) with a key or two given random
    values."""
    daemon: dict[str, object] = {"port": 0, "secrets_file": "{secrets}", "bwlimit": "50M"}
    module: dict[str, object] = {"name": "m", "path": "{dir}", "auth_users": ["alice"]}
    for _ in range(draw(st.integers(1, 2))):
        table = draw(st.sampled_from([daemon, module]))
        keys = DAEMON_KEYS if table is daemon else MODULE_KEYS
        table[draw(st.sampled_from(keys))] = draw(key_values)
    return render(daemon, [module])


@st.composite
def config_files(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["document", "edited", "mutated", "bytes", "nested"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "nested":  # far deeper than any config, as a hostile file could be
        depth = draw(st.integers(1, 5000))
        return f"motd = {'[' * depth}{']' * depth}\n".encode()
    if kind == "edited":
        return draw(edited_documents()).encode()
    text = draw(documents()).encode()
    return draw(mutated(text)) if kind == "mutated" else text


@fuzz_settings()
@example(body=b"motd = " + b"[" * 5000 + b"]" * 5000, secrets=b"", secrets_mode=0o600)
@example(body=b'[daemon]\nbwlimit = "' + b"1" * 400 + b'"\n', secrets=b"", secrets_mode=0o600)
@example(body=b'[daemon]\nsecrets_file = "/a\\u0000b"\n[[module]]\nname = "m"\n'
         b'path = "{dir}"\nauth_users = ["alice"]\n', secrets=b"", secrets_mode=0o600)
@given(body=config_files(), secrets=st.binary(max_size=200), secrets_mode=st.sampled_from(
    [0o600, 0o640]))
def test_any_config_file_gives_a_config_or_a_config_error(
        tmp_path: Path, body: bytes, secrets: bytes, secrets_mode: int) -> None:
    module_dir = tmp_path / "module"
    module_dir.mkdir(exist_ok=True)
    secrets_file = tmp_path / "secrets"
    secrets_file.write_bytes(secrets + b"\nalice:s3cret\n")
    os.chmod(secrets_file, secrets_mode)
    config = tmp_path / "blit.toml"
    config.write_bytes(body.replace(b"{dir}", os.fsencode(module_dir))
                       .replace(b"{secrets}", os.fsencode(secrets_file)))
    try:
        loaded = load_config(str(config))
    except ConfigError as exc:
        assert str(exc).startswith(str(config)) or str(exc).startswith(str(secrets_file))
    else:
        assert isinstance(loaded, DaemonConfig)
        assert all(os.path.isdir(module.path) for module in loaded.modules)
