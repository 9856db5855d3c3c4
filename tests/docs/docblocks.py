"""The examples of README.md and docs/*.md: code blocks, their markers, and the command lines
and options they name.

Fenced blocks tagged ``bash``/``sh``/``shell`` run in bash, ``python`` blocks in Python; any
other tag (``text``, ``yaml``, ``bibtex``, ``mermaid``, ...) is shown, not run. A runnable
block right after ``<!-- not-run: REASON -->`` is skipped; the reason is required.
``<!-- docs-setup: NAME -->`` anywhere on a page asks for a prepared input (see
``test_docs_examples.SETUPS``).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN_LANGS = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python", "py": "python"}

_FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
_NOT_RUN = re.compile(r"<!--\s*not-run:?(.*?)-->", re.S)
_SETUP = re.compile(r"<!--\s*docs-setup:\s*([\w,\s-]+?)\s*-->")
_INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    not_run: str | None = None  # the reason, when marked not-run ("" = marked without one)

    @property
    def runs(self) -> str | None:
        """``bash``/``python`` when the block is executed, else None."""
        return RUN_LANGS.get(self.lang) if self.not_run is None else None

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def doc_pages() -> list[Path]:
    """README.md and every page under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def parse(path: Path) -> tuple[list[Block], str]:
    """The fenced blocks of ``path`` and its prose (everything outside them)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    prose: list[str] = []
    i = 0
    pending_marker: str | None = None
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            prose.append(lines[i])
            nr = _NOT_RUN.search(lines[i])
            if nr:
                pending_marker = nr.group(1).strip()
            elif lines[i].strip():
                pending_marker = None
            i += 1
            continue
        indent, fence, lang = m.group(1), m.group(2), m.group(3).lower()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i].lstrip())
            i += 1
        i += 1
        blocks.append(Block(path, start + 1, lang, "\n".join(body) + "\n", pending_marker))
        pending_marker = None
    return blocks, "\n".join(prose)


def setups(path: Path) -> list[str]:
    """The prepared inputs a page asks for (``<!-- docs-setup: media -->``)."""
    names: list[str] = []
    for m in _SETUP.finditer(path.read_text(encoding="utf-8")):
        names += [n.strip() for n in m.group(1).split(",") if n.strip()]
    return names


# ----------------------------------------------------------------------------- command lines


def command_lines(path: Path) -> list[tuple[str, str]]:
    """(where, command) for every ``mmlatch ...`` / ``python benchmarks/...`` command in
    ``path``: lines of any code block (continuations joined, comments cut, pipelines split)
    and inline code spans of the prose."""
    blocks, prose = parse(path)
    out: list[tuple[str, str]] = []
    for b in blocks:
        if b.lang in ("python", "py", "yaml", "yml", "json", "bibtex", "mermaid", "toml", "csv"):
            continue
        joined = re.sub(r"\\\n", " ", b.code)
        if b.lang not in RUN_LANGS:  # a synopsis: indented lines continue the command above
            joined = re.sub(r"\n[ \t]+(?!mmlatch\b)(?=\S)", " ", joined)
        for k, line in enumerate(joined.splitlines()):
            for cmd in _split_commands(line):
                out.append((f"{b.where}+{k + 1}", cmd))
    for m in _INLINE.finditer(prose):
        for cmd in _split_commands(m.group(1)):
            out.append((f"{path.relative_to(ROOT)} (inline)", cmd))
    return out


def _split_commands(line: str) -> list[str]:
    line = re.sub(r"(^|\s)#.*$", "", line).strip()
    line = re.sub(r"^\$\s+", "", line)
    cmds = []
    for part in re.split(r"\s*(?:&&|\|\||;|(?<!\[)\|(?![^\[]*\]))\s*", line):
        part = part.strip()
        part = re.sub(r"^(?:[A-Z_]+=\S+\s+)+", "", part)  # VAR=value mmlatch ...
        if re.match(r"^(mmlatch|python\s+benchmarks/)(\s|$)", part):
            cmds.append(part)
    return cmds


def tokens(cmd: str) -> list[str]:
    try:
        return shlex.split(cmd)
    except ValueError:
        return cmd.split()


_OPTION = re.compile(r"^\[?(--[a-z0-9][a-z0-9-]*)")


def options_in(words: list[str]) -> list[str]:
    """The ``--long-options`` among ``words`` (``[--x``, ``--x=v``, ``--x]`` included)."""
    out = []
    for w in words:
        m = _OPTION.match(w)
        if m:
            out.append(m.group(1))
    return out


def prose_options(path: Path) -> list[tuple[str, str]]:
    """(where, option) for every ``--option`` written anywhere on the page."""
    text = path.read_text(encoding="utf-8")
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        for m in re.finditer(r"(?<![\w-])--([a-z][a-z0-9_-]*[a-z0-9])", line):
            out.append((f"{path.relative_to(ROOT)}:{n}", "--" + m.group(1)))
    return out


# ----------------------------------------------------------------------------- the CLI


def cli_tree() -> object:
    """The click command behind ``mmlatch`` (what ``mmlatch --help`` shows)."""
    import typer.main

    from mmlatch.cli.main import app

    return typer.main.get_command(app)


def command_options(cmd: object) -> set[str]:
    opts = {"--help"}
    for p in getattr(cmd, "params", []):
        if p.param_type_name == "option":
            opts.update(o for o in [*p.opts, *p.secondary_opts] if o.startswith("--"))
    return opts


def all_cli_options(root: object) -> set[str]:
    found = set(command_options(root))
    for sub in getattr(root, "commands", {}).values():
        found |= all_cli_options(sub)
    return found


def resolve(root: object, words: list[str]) -> tuple[list[str], object, list[str], str | None]:
    """Walk ``mmlatch a b ...`` down the command tree: (path, command, remaining words, error)."""
    cmd, path = root, []
    rest = list(words[1:])
    while hasattr(cmd, "commands") and rest and not rest[0].startswith("-"):
        name = rest[0]
        if name not in cmd.commands:
            if re.fullmatch(r"[a-z][a-z-]*", name):
                return path, cmd, rest, (
                    f"`mmlatch {' '.join(path + [name])}`: no such command "
                    f"(known: {', '.join(sorted(cmd.commands))})"
                )
            break
        cmd = cmd.commands[name]
        path.append(name)
        rest = rest[1:]
    return path, cmd, rest, None


def benchmark_options() -> dict[str, set[str]]:
    """benchmarks/NAME.py -> the options its argparse parser declares."""
    out = {}
    for f in sorted((ROOT / "benchmarks").glob("*.py")):
        text = f.read_text(encoding="utf-8")
        out[f"benchmarks/{f.name}"] = {"--help", *re.findall(r"add_argument\(\s*[\"'](--[a-z0-9-]+)", text)}
    return out
