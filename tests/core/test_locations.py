"""Command-line locations: which stay local paths, how remote ones are split into host, port,
module and path, and which are refused with a usage error."""

from __future__ import annotations

import pytest

from blit_core.errors import UsageError
from blit_core.locations import RemoteLocation, is_module_name, parse_location


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        "dir/file",
        "/abs/path",
        "/abs/with:colon",
        "./a:b",
        "../a:b",
        ".hidden:x",
        "~/a:b",
        "~user:/x",
        "dir/a:b",
        "dir/",
        "",
    ],
)
def test_local_paths_are_returned_unchanged(text):
    assert parse_location(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nas:/photos/2024/jan", RemoteLocation("nas", None, "photos", "2024/jan", False)),
        ("nas:/photos", RemoteLocation("nas", None, "photos", "", False)),
        ("nas:/photos/", RemoteLocation("nas", None, "photos", "", True)),
        ("nas:/photos/.", RemoteLocation("nas", None, "photos", "", True)),
        ("nas:/photos/dir/", RemoteLocation("nas", None, "photos", "dir", True)),
        ("nas:/mod//a/./b/", RemoteLocation("nas", None, "mod", "a/b", True)),
        ("nas:9031:/m/x", RemoteLocation("nas", 9031, "m", "x", False)),
        ("nas.example.org:1:/m", RemoteLocation("nas.example.org", 1, "m", "", False)),
        ("10.0.0.2:/m/a", RemoteLocation("10.0.0.2", None, "m", "a", False)),
        ("10.0.0.2:65535:/m/", RemoteLocation("10.0.0.2", 65535, "m", "", True)),
        ("[::1]:/m/a", RemoteLocation("::1", None, "m", "a", False)),
        ("[fe80::1%eth0]:9031:/m/a/", RemoteLocation("fe80::1%eth0", 9031, "m", "a", True)),
        ("h:/My_Mod-1.x/f:g", RemoteLocation("h", None, "My_Mod-1.x", "f:g", False)),
        ("h:/m/spaced name", RemoteLocation("h", None, "m", "spaced name", False)),
        ("alice@nas:/m/x", RemoteLocation("nas", None, "m", "x", False, "alice")),
        ("bk.1@[::1]:7000:/m/", RemoteLocation("::1", 7000, "m", "", True, "bk.1")),
        ("h:/m/a@b", RemoteLocation("h", None, "m", "a@b", False)),  # '@' in the path
    ],
)
def test_remote_locations_are_parsed(text, expected):
    assert parse_location(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a:b", "remote paths look like host:/module/path"),
        ("a:b", "./a:b"),
        ("nas:photos/x", "remote paths look like host:/module/path"),
        ("nas:", "blit-utils list-modules nas"),
        ("nas:/", "blit-utils list-modules nas"),
        ("nas://", "blit-utils list-modules nas"),
        ("nas:9031:", "blit-utils list-modules nas:9031"),
        ("[::1]:/", "blit-utils list-modules [::1]"),
        (":/m/x", "host before ':' is missing"),
        ("[]:/m/x", "not an IPv6 address"),
        ("[nas]:/m/x", "not an IPv6 address"),
        ("[::1:/m/x", "missing ']'"),
        ("[::1]/m", "expected ':' after ']'"),
        ("my host:/m/x", "is not a host name"),
        ("nas:0:/m", "port 0 is not between 1 and 65535"),
        ("nas:65536:/m", "port 65536 is not between 1 and 65535"),
        ("nas:123456789012345678901234567890:/m", "is not between 1 and 65535"),
        ("nas:/m/../x", "'..' is not allowed"),
        ("nas:/../m", "'..' is not allowed"),
        ("nas:/m/a/..", "'..' is not allowed"),
        ("nas:/m/a\\b", "backslash"),
        ("nas:/m/a\x00b", "NUL"),
        ("nas:/-m/x", "is not a module name"),
        ("nas:/" + "m" * 65, "is not a module name"),
        ("nas:/mod!/x", "is not a module name"),
        ("@nas:/m", "not a user name"),
        ("a b@nas:/m", "not a user name"),
    ],
)
def test_bad_remote_locations_are_usage_errors(text, problem):
    with pytest.raises(UsageError) as caught:
        parse_location(text)
    assert problem in str(caught.value)


def test_address_uses_the_default_port_and_brackets_ipv6():
    assert parse_location("nas:/m").address(9031) == "nas:9031"
    assert parse_location("nas:7000:/m").address(9031) == "nas:7000"
    assert parse_location("[::1]:/m").address(9031) == "[::1]:9031"
    assert parse_location("[2001:db8::5]:7000:/m").address(9031) == "[2001:db8::5]:7000"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("nas:/m", "nas:/m"),
        ("nas:/m/", "nas:/m/"),
        ("nas:7000:/m/a//b/", "nas:7000:/m/a/b/"),
        ("[::1]:/m/a", "[::1]:/m/a"),
        ("[::1]:7000:/m/./a", "[::1]:7000:/m/a"),
        ("alice@nas:/m", "alice@nas:/m"),
    ],
)
def test_str_gives_the_location_back_in_the_users_syntax(text, shown):
    location = parse_location(text)
    assert str(location) == shown
    assert parse_location(str(location)) == location


def test_module_names():
    assert is_module_name("a")
    assert is_module_name("0")
    assert is_module_name("a" * 64)
    assert is_module_name("Photos_2024.v-1")
    assert not is_module_name("")
    assert not is_module_name("a" * 65)
    assert not is_module_name(".hidden")
    assert not is_module_name("_x")
    assert not is_module_name("a b")
    assert not is_module_name("a/b")
