"""The operator and partner documents cite only what exists (issue 12, item 5): every `cme` command and
flag they show is one the CLI has, every CME_ variable is a setting the service reads (or one the test
tooling reads), and every `make` target is in the Makefile."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

import app.cme.config as cme_config
from app.cli import build_parser
from app.core.config import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    "README.md",
    "docs/deploy.md",
    "docs/runbook.md",
    "docs/guide-health-boards.md",
    "docs/guide-la-case-systems.md",
    "docs/data-protection.md",
]
# Read by the test tooling, not the service.
TOOLING_VARIABLES = {"CME_TEST_ADMIN_DSN", "CME_PG_BIN", "CME_FUZZ_EXAMPLES", "CME_FUZZ_SEED"}


def _setting_variables() -> set[str]:
    classes: list[type[BaseSettings]] = [Settings]
    classes += [
        value
        for value in vars(cme_config).values()
        if isinstance(value, type) and issubclass(value, BaseSettings) and value is not BaseSettings
    ]
    return {f"CME_{name.upper()}" for cls in classes for name in cls.model_fields}


def _words(command: str) -> list[str]:
    """The words of one shell command, up to the first operator (a pipe, redirection, `;`, `&&`, `)`)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words: list[str] = []
    try:
        for word in lexer:
            if set(word) <= set("();<>|&"):
                break
            words.append(word)
    except ValueError:  # an unclosed quote: the rest of the line is not part of the command
        pass
    return [w for w in words if w not in {"[", "]", "...", "…"}]


def shell_blocks(text: str) -> list[str]:
    """The fenced code blocks that are shell (```sh, ```bash or no language), fences paired in order."""
    blocks: list[str] = []
    language: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith("```"):
            if language is None:
                language, lines = line[3:].strip(), []
            else:
                if language in {"", "sh", "bash"}:
                    blocks.append("\n".join(lines))
                language = None
        elif language is not None:
            lines.append(line)
    return blocks


def _cme_invocations(text: str) -> list[list[str]]:
    """Every `cme ...` command in the text: in shell blocks (continuation lines joined, comments dropped)
    and in inline code elsewhere."""
    commands: list[str] = []
    for block in shell_blocks(text):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0]
            if line.lstrip().startswith("#"):
                continue
            commands += [line[m.start(1) :] for m in re.finditer(r"(?:^|[\s(\"'`;|&])(cme )", line)]
    prose = re.sub(r"^```.*?^```$", "", text, flags=re.MULTILINE | re.DOTALL)
    commands += re.findall(r"`(cme [^`]*)`", prose)
    return [_words(command) for command in commands]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse has no public accessor for sub-commands
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _check(tokens: list[str]) -> str | None:
    """None when the command path and every flag exist; else what is wrong."""
    parser = build_parser()
    path = ["cme"]
    rest = tokens[1:]
    while rest and _subparsers(parser):
        choices = _subparsers(parser)
        if rest[0] not in choices:
            return f"`{' '.join(path)}` has no sub-command {rest[0]!r}"
        path.append(rest[0])
        parser = choices[rest[0]]
        rest = rest[1:]
    flags = {option for action in parser._actions for option in action.option_strings}
    for token in rest:
        flag = token.lstrip("[").split("=", 1)[0]
        if flag.startswith("--") and flag not in flags:
            return f"`{' '.join(path)}` has no option {flag}"
    return None


@pytest.mark.parametrize("name", DOCS)
def test_every_cme_command_and_flag_cited_exists(name: str) -> None:
    invocations = _cme_invocations((ROOT / name).read_text())
    problems = [f"{' '.join(tokens)}: {problem}" for tokens in invocations if (problem := _check(tokens))]
    assert problems == []


def test_the_documents_cite_commands_at_all() -> None:
    cited = {" ".join(tokens[:2]) for name in DOCS for tokens in _cme_invocations((ROOT / name).read_text())}
    assert {
        "cme validate",
        "cme submit",
        "cme sign",
        "cme token",
        "cme keys",
        "cme audit",
        "cme migrate",
    } <= cited


@pytest.mark.parametrize("name", DOCS)
def test_every_cme_variable_cited_is_read(name: str) -> None:
    known = _setting_variables() | TOOLING_VARIABLES
    cited = set(re.findall(r"\bCME_[A-Z][A-Z0-9_]*[A-Z0-9]\b", (ROOT / name).read_text()))
    assert sorted(cited - known) == []


@pytest.mark.parametrize("name", DOCS)
def test_every_make_target_cited_exists(name: str) -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", makefile, flags=re.MULTILINE))
    cited = set(re.findall(r"`make ([a-z][a-z0-9-]*)", (ROOT / name).read_text()))
    cited |= set(re.findall(r"^make ([a-z][a-z0-9-]*)", (ROOT / name).read_text(), flags=re.MULTILINE))
    assert sorted(cited - targets) == []


def test_the_checker_finds_what_does_not_exist() -> None:
    assert _check(["cme", "keys", "rotate"]) is not None
    assert _check(["cme", "submit", "x.json", "--no-such-flag"]) is not None
    assert _check(["cme", "submit", "x.json", "--no-wait", "--url", "U"]) is None
    assert _cme_invocations("```sh\ncme keys list \\\n    --partner X  # a comment --bogus\n```\n") == [
        ["cme", "keys", "list", "--partner", "X"]
    ]
