"""The README's command table is checked against the real parser, so it cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

from zhiku.cli.app import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"


def parser_commands() -> dict[str, str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return {a.dest: a.help for a in sub._choices_actions}  # type: ignore[attr-defined]


def test_readme_lists_every_command_with_its_help() -> None:
    text = README.read_text(encoding="utf-8")
    block = text.split("<!-- commands:start")[1].split("<!-- commands:end -->")[0]
    rows = dict(re.findall(r"^\| `zhiku (\S+)[^`]*` \| (.+?) \|$", block, flags=re.M))
    assert rows == parser_commands()
