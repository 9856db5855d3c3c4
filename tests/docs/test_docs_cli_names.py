"""Every command and option the docs name exists in the command line (renaming one fails here
until the docs follow)."""

from __future__ import annotations

import pytest

from docblocks import ROOT, benchmark_options, command_lines, doc_pages, options_in, prose_options, resolve, tokens

#: options of other programs the docs mention (pip, tensorboard, mkdocs, MulT's public code)
OTHER_TOOLS = {"--index-url", "--logdir", "--upgrade", "--strict", "--editable", "--attn_mask", "--no-deps"}


@pytest.fixture(scope="module")
def cli():
    from docblocks import all_cli_options, cli_tree

    root = cli_tree()
    return root, all_cli_options(root)


def test_commands_and_their_options_exist(cli) -> None:
    """``mmlatch a b --opt`` anywhere in the docs: ``a b`` is a command and ``--opt`` one of its
    options; ``python benchmarks/X.py --opt``: the script declares ``--opt``."""
    from docblocks import command_options

    root, _ = cli
    bench = benchmark_options()
    problems, seen = [], 0
    for page in doc_pages():
        for where, cmd in command_lines(page):
            words = tokens(cmd)
            seen += 1
            if words[0] == "python":
                script = words[1]
                if script not in bench:
                    problems.append(f"{where}: {script} does not exist")
                    continue
                bad = [o for o in options_in(words[2:]) if o not in bench[script]]
                problems += [f"{where}: {script} has no option {o}" for o in bad]
                continue
            path, command, rest, error = resolve(root, words)
            if error:
                problems.append(f"{where}: {error}")
                continue
            known = command_options(command)
            for o in options_in(rest):
                if o not in known:
                    problems.append(
                        f"{where}: `mmlatch {' '.join(path)}` has no option {o} "
                        f"(it has {', '.join(sorted(known - {'--help'}))})"
                    )
    assert seen > 50, f"only {seen} command lines found in the docs: is the parser broken?"
    assert not problems, "the docs name commands/options the CLI lacks:\n" + "\n".join(problems)


def test_every_option_written_in_the_docs_exists(cli) -> None:
    """Any ``--option`` in prose too (``--keep-sp``, ``--fps``): an option of some mmlatch
    command, of a benchmark script, or of a listed other tool."""
    _, everything = cli
    known = everything | set().union(*benchmark_options().values()) | OTHER_TOOLS
    problems = [f"{where}: {o}" for page in doc_pages() for where, o in prose_options(page) if o not in known]
    assert not problems, "options named in the docs that nothing defines:\n" + "\n".join(problems)


def test_the_checks_catch_a_renamed_option(cli, tmp_path, monkeypatch) -> None:
    """The parser on a made-up page: a wrong option and a wrong subcommand are both found."""
    import docblocks

    root, _ = cli
    page = tmp_path / "page.md"
    page.write_text("```bash\nmmlatch train --data synthetic --epochz 2\nmmlatch analyze maskz --run r\n```\n"
                    "Use `mmlatch evaluate --runn DIR`.\n")
    monkeypatch.setattr(docblocks, "ROOT", tmp_path)
    found = []
    for where, cmd in command_lines(page):
        path, command, rest, error = resolve(root, tokens(cmd))
        found.append(error or [o for o in options_in(rest) if o not in docblocks.command_options(command)])
    assert found[0] == ["--epochz"]
    assert "analyze maskz" in found[1]
    assert found[2] == ["--runn"]


def test_readme_is_a_front_page() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; the details belong in docs/"


def _leaf_commands(cmd: object, path: tuple[str, ...] = ()) -> list[str]:
    subs = getattr(cmd, "commands", None)
    if not subs:
        return [" ".join(path)]
    return [leaf for name, sub in subs.items() for leaf in _leaf_commands(sub, (*path, name))]


def test_every_command_is_documented(cli) -> None:
    """A new subcommand fails here until a page shows it (``mmlatch NAME`` in the docs)."""
    root, _ = cli
    text = "\n".join(p.read_text(encoding="utf-8") for p in doc_pages())
    missing = [c for c in _leaf_commands(root) if f"mmlatch {c}" not in text]
    assert not missing, "commands no page of the docs names: " + ", ".join(f"mmlatch {c}" for c in missing)


def test_every_model_is_documented() -> None:
    """A new registered model fails here until the models page and the README's table list it."""
    from mmlatch.models import list_models

    for page in (ROOT / "README.md", ROOT / "docs" / "guide" / "models.md"):
        text = page.read_text(encoding="utf-8")
        missing = [m for m in list_models() if f"`{m}`" not in text]
        assert not missing, f"{page.relative_to(ROOT)} does not list the models {missing}"


def test_readme_links_exist() -> None:
    """The README's relative links (into docs/) point at files that exist."""
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in t]
    missing = [t for t in targets if t and not (ROOT / t).exists()]
    assert targets and not missing, f"README links to missing files: {missing}"
