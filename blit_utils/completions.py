"""`blit-utils completions bash|zsh|fish`: shell completion for blit, blit-utils and blit-daemon.

The scripts are generated from the three argument parsers, so verbs and options never drift
from the programs. Local paths complete as files; a word that names a remote location
(`host:/module/pa`, `host:port:/...`) completes through the daemon, by running
`blit-utils complete-path WORD` (the CompletePath RPC)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from dataclasses import dataclass

SHELLS = ("bash", "zsh", "fish")


@dataclass(frozen=True)
class Command:
    """What one program, or one verb of it, accepts."""

    program: str
    verb: str  # "" for the program itself
    options: tuple[str, ...]
    choices: dict[str, tuple[str, ...]]  # option (or "" for the first positional) -> values
    helps: dict[str, str]  # option -> its help text, for the shells that show it
    verbs: tuple[str, ...]  # the visible sub-commands, for the program itself


def register(subparsers: argparse._SubParsersAction) -> None:
    sub = subparsers.add_parser(
        "completions", add_help=False, help="print a shell completion script",
        description="Print a completion script for blit, blit-utils and blit-daemon.\n\n"
        "bash:  blit-utils completions bash > ~/.local/share/bash-completion/completions/blit\n"
        "       (or add 'eval \"$(blit-utils completions bash)\"' to ~/.bashrc)\n"
        "zsh:   blit-utils completions zsh > \"${fpath[1]}/_blit\"\n"
        "fish:  blit-utils completions fish > ~/.config/fish/completions/blit.fish",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    sub.add_argument("--help", action="help", help="show this help and exit")
    sub.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    print(script(args.shell), end="")
    return 0


def script(shell: str) -> str:
    """The completion script for `shell`, covering the three programs."""
    commands = list(_all_commands())
    return RENDERERS[shell](commands)


def _all_commands() -> Iterator[Command]:
    from blit_cli.main import build_parser as blit_parser
    from blit_daemon.cli import build_parser as daemon_parser
    from blit_utils.main import build_parser as utils_parser

    for program, build in (("blit", blit_parser), ("blit-utils", utils_parser),
                           ("blit-daemon", daemon_parser)):
        yield from _commands(program, "", build())


def _commands(program: str, verb: str, parser: argparse.ArgumentParser) -> Iterator[Command]:
    options: list[str] = []
    choices: dict[str, tuple[str, ...]] = {}
    helps: dict[str, str] = {}
    verbs: tuple[str, ...] = ()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            verbs = tuple(pseudo.dest for pseudo in action._choices_actions)
            for name in verbs:
                yield from _commands(program, name, action.choices[name])
            continue
        if action.choices is not None:
            values = tuple(str(choice) for choice in action.choices)
            for flag in action.option_strings or [""]:
                choices[flag] = values
        options.extend(action.option_strings)
        if action.help and action.help != argparse.SUPPRESS:
            helps.update(dict.fromkeys(action.option_strings, action.help))
    yield Command(program, verb, tuple(options), choices, helps, verbs)


def _by_program(commands: list[Command]) -> dict[str, list[Command]]:
    grouped: dict[str, list[Command]] = {}
    for command in commands:
        grouped.setdefault(command.program, []).append(command)
    return grouped


def _function(program: str) -> str:
    return "_" + program.replace("-", "_")


# --- bash --------------------------------------------------------------------------------------

BASH_PRELUDE = r"""# blit, blit-utils and blit-daemon completion (bash): blit-utils completions bash

# The word under the cursor as the user typed it: bash splits host:/path at ':'.
_blit_word() {
    local line=${COMP_LINE:0:COMP_POINT}
    printf '%s' "${line##*[[:space:]]}"
}

# Whether a word names a daemon location (host:/module/path), as the programs decide.
_blit_is_remote() {
    local word=$1 head=${1%%:*}
    [[ $word == *:* && $word != [/.~]* && $head != */* ]]
}

# Complete a daemon location through the daemon; candidates lose what bash already split off.
_blit_remote() {
    local word=$1 strip= candidate
    [[ $COMP_WORDBREAKS == *:* ]] && strip=${word%"${word##*:}"}
    local IFS=$'\n'
    COMPREPLY=()
    for candidate in $(blit-utils complete-path -- "$word" 2>/dev/null); do
        COMPREPLY+=("${candidate#"$strip"}")
    done
    compopt -o nospace 2>/dev/null
}

# Options, the values of an option with choices, else files.
_blit_rest() {
    local opts=$1 choices=$2
    local cur=${COMP_WORDS[COMP_CWORD]}
    if [[ -n $choices ]]; then
        COMPREPLY=($(compgen -W "$choices" -- "$cur"))
    elif [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    else
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}
"""


def _bash(commands: list[Command]) -> str:
    parts = [BASH_PRELUDE]
    for program, group in _by_program(commands).items():
        parts.append(_bash_program(program, group))
    return "\n".join(parts)


def _bash_program(program: str, group: list[Command]) -> str:
    top = next(c for c in group if not c.verb)
    lines = [
        f"{_function(program)}() {{",
        "    local word; word=$(_blit_word)",
        '    if _blit_is_remote "$word"; then _blit_remote "$word"; return; fi',
        "    local prev=${COMP_WORDS[COMP_CWORD-1]} choices=",
    ]
    if top.verbs:
        first_words = " ".join(top.verbs + top.options)
        lines += [
            "    if ((COMP_CWORD == 1)); then",
            f'        COMPREPLY=($(compgen -W "{first_words}" -- "${{COMP_WORDS[1]}}"))',
            "        return",
            "    fi",
            "    case ${COMP_WORDS[1]} in",
        ]
        for command in group:
            if command.verb:
                lines.append(f"    {command.verb}) {_rest_call(command, 'COMP_CWORD == 2')} ;;")
        lines.append("    esac")
    else:
        lines.append(f"    {_rest_call(top, 'COMP_CWORD == 1')}")
    lines += ["}", f"complete -F {_function(program)} {program}", ""]
    return "\n".join(lines)


def _rest_call(command: Command, at_positional: str) -> str:
    """`_blit_rest OPTIONS CHOICES` (both shells' helper), the choices picked by the previous
    word, or by the cursor being on the first positional (`at_positional`, a shell test)."""
    cases = [f'{flag}) choices="{" ".join(values)}" ;;'
             for flag, values in command.choices.items() if flag]
    positional = command.choices.get("")
    if positional:
        cases.append(f'*) (({at_positional})) && choices="{" ".join(positional)}" ;;')
    pick = f"case $prev in {' '.join(cases)} esac; " if cases else ""
    return f'{pick}_blit_rest "{" ".join(command.options)}" "$choices"'


# --- zsh ---------------------------------------------------------------------------------------

ZSH_PRELUDE = r"""#compdef blit blit-utils blit-daemon
# blit, blit-utils and blit-daemon completion (zsh): blit-utils completions zsh

# Complete a daemon location (host:/module/path) through the daemon.
_blit_remote() {
    local -a found dirs files
    found=(${(f)"$(blit-utils complete-path -- ${words[CURRENT]} 2>/dev/null)"})
    dirs=(${(M)found:#*/})
    files=(${found:#*/})
    compadd -Q -S '' -- $dirs
    compadd -Q -- $files
}

# Options, the values of an option with choices, else files.
_blit_rest() {
    local opts=$1 choices=$2
    if [[ -n $choices ]]; then
        compadd -- ${=choices}
    elif [[ ${words[CURRENT]} == -* ]]; then
        compadd -- ${=opts}
    else
        _files
    fi
}
"""


def _zsh(commands: list[Command]) -> str:
    lines = [ZSH_PRELUDE, "_blit_dispatch() {", "    local word=${words[CURRENT]}",
             "    local head=${word%%:*}",
             "    if [[ $word == *:* && $word != [/.~]* && $head != */* ]]; then",
             "        _blit_remote; return", "    fi",
             "    local prev=${words[CURRENT-1]} choices=", "    case $service in"]
    for program, group in _by_program(commands).items():
        top = next(c for c in group if not c.verb)
        lines.append(f"    {program})")
        if top.verbs:
            lines += [
                "        if ((CURRENT == 2)); then",
                f"            compadd -- {' '.join(top.verbs + top.options)}; return",
                "        fi",
                "        case ${words[2]} in",
            ]
            for command in group:
                if command.verb:
                    call = _rest_call(command, "CURRENT == 3")
                    lines.append(f"        {command.verb}) {call} ;;")
            lines.append("        esac ;;")
        else:
            lines.append(f"        {_rest_call(top, 'CURRENT == 2')} ;;")
    lines += ["    esac", "}", "compdef _blit_dispatch blit blit-utils blit-daemon", ""]
    return "\n".join(lines)


# --- fish --------------------------------------------------------------------------------------

FISH_PRELUDE = r"""# blit, blit-utils and blit-daemon completion (fish): blit-utils completions fish

# Complete a daemon location (host:/module/path) through the daemon.
function __blit_remote
    set -l word (commandline -ct)
    string match -qr '^[^/.~][^/:]*:' -- $word; or return
    blit-utils complete-path -- $word 2>/dev/null
end
"""


def _fish(commands: list[Command]) -> str:
    lines = [FISH_PRELUDE]
    for program, group in _by_program(commands).items():
        top = next(c for c in group if not c.verb)
        lines.append(f"complete -c {program} -a '(__blit_remote)'")
        if top.verbs:
            verbs = " ".join(top.verbs)
            lines.append(f"complete -c {program} -f -n '__fish_use_subcommand' -a '{verbs}'")
        for command in group:
            condition = (f" -n '__fish_seen_subcommand_from {command.verb}'" if command.verb
                         else (" -n '__fish_use_subcommand'" if top.verbs else ""))
            lines.extend(_fish_options(program, condition, command))
        lines.append("")
    return "\n".join(lines)


def _fish_options(program: str, condition: str, command: Command) -> Iterator[str]:
    for flag in command.options:
        spec = f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}"
        values = command.choices.get(flag)
        value_spec = f" -x -a '{' '.join(values)}'" if values else ""
        text = command.helps.get(flag, "").replace("\\", "\\\\").replace("'", "\\'")
        yield f"complete -c {program}{condition} {spec}{value_spec} -d '{text}'"
    positional = command.choices.get("")
    if positional:
        yield f"complete -c {program}{condition} -f -a '{' '.join(positional)}'"


RENDERERS: dict[str, Callable[[list[Command]], str]] = {"bash": _bash, "zsh": _zsh, "fish": _fish}
