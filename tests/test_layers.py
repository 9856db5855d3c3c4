"""The package's shape, checked on the source (AST, nothing imported):

- layers: every package imports only packages of lower layers
  (``files`` -> ``data``/``modules``/``rundir`` -> ``models``/``metrics``/``extract`` ->
  ``training`` -> ``analysis`` -> ``cli``), function-level (lazy) imports included;
- no private name (``_x``, or a module ``_x``) imported from another package;
- no import cycles between modules;
- no function longer than 100 lines; no top-level function or class defined twice under one
  name (a CLI command named like the library function it calls is allowed).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "mmlatch"

#: top-level package/module of mmlatch -> layer; a package imports only lower layers
LAYERS: dict[str, int] = {
    "version": 0,
    "files": 0,
    "packaged": 0,
    "data": 1,
    "modules": 1,
    "rundir": 1,
    "models": 2,
    "metrics": 2,
    "extract": 2,
    "training": 3,
    "analysis": 4,
    "cli": 5,
    "__main__": 6,
    "": 6,  # mmlatch/__init__.py: the lazy top-level API (mmlatch.load_run)
}
MAX_FUNCTION_LINES = 100


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _sources() -> dict[str, tuple[Path, ast.Module]]:
    return {_module_name(p): (p, ast.parse(p.read_text(), str(p))) for p in sorted(PACKAGE.rglob("*.py"))}


SOURCES = _sources()


def _imports(module: str, path: Path, tree: ast.Module) -> list[tuple[str, str | None, int]]:
    """``(imported module, imported name or None, line)`` for every mmlatch import, lazy ones too."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, None, node.lineno) for a in node.names if a.name.split(".")[0] == "mmlatch"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "mmlatch":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in SOURCES:  # `from mmlatch.x import module`
                    found.append((sub, None, node.lineno))
                else:
                    found.append((target, alias.name, node.lineno))
    return found


def _layer_key(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _package_of(module: str) -> str:
    path = SOURCES[module][0] if module in SOURCES else None
    return module if path is not None and path.name == "__init__.py" else module.rpartition(".")[0]


def _edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for module, (path, tree) in SOURCES.items():
        for target, _, _ in _imports(module, path, tree):
            if target in SOURCES and target != module:
                edges[module].add(target)
    return edges


def test_every_package_has_a_layer() -> None:
    unknown = sorted({_layer_key(m) for m in SOURCES} - set(LAYERS))
    assert not unknown, f"give these a layer in tests/test_layers.py LAYERS: {unknown}"


def test_nothing_imports_upward() -> None:
    bad = []
    for module, (path, tree) in SOURCES.items():
        own = LAYERS[_layer_key(module)]
        for target, name, line in _imports(module, path, tree):
            key = _layer_key(target)
            if key != _layer_key(module) and LAYERS.get(key, 99) >= own:
                bad.append(f"{path.relative_to(SRC)}:{line}: {module} (layer {own}) imports {target} (layer {LAYERS.get(key)})")
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_no_private_names_across_packages() -> None:
    bad = []
    for module, (path, tree) in SOURCES.items():
        for target, name, line in _imports(module, path, tree):
            if _package_of(target if target in SOURCES else target) == _package_of(module):
                continue
            if target not in SOURCES and target.rpartition(".")[0] == _package_of(module):
                continue
            private_module = any(p.startswith("_") and not p.startswith("__") for p in target.split("."))
            private_name = name is not None and name.startswith("_") and not name.startswith("__")
            if private_module or private_name:
                bad.append(f"{path.relative_to(SRC)}:{line}: {module} imports {target}{'.' + name if name else ''}")
    assert not bad, "private names imported from another package:\n" + "\n".join(bad)


def test_no_import_cycles() -> None:
    edges = _edges()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in SOURCES:
        if v not in index:
            visit(v)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_long_functions() -> None:
    long = []
    for module, (path, tree) in SOURCES.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(SRC)}:{node.lineno}: {node.name} has {n} lines")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


def _cli_command_names() -> set[str]:
    """Top-level functions of mmlatch.cli decorated as commands (``@app.command``/``@group.command``)."""
    names = set()
    for module, (_, tree) in SOURCES.items():
        if not module.startswith("mmlatch.cli"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and any(
                isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == "command"
                for d in node.decorator_list
            ):
                names.add(node.name)
    return names


def test_no_twins() -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for module, (_, tree) in SOURCES.items():
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                where[node.name].append(module)
    commands = _cli_command_names()
    # by design one per module: a package's lazy attribute hook; each CLI command module's
    # `register(app)` hook
    allowed = {"__getattr__", "register"}
    twins = []
    for name, modules in where.items():
        if len(modules) < 2 or name in allowed:
            continue
        outside_cli = [m for m in modules if not m.startswith("mmlatch.cli")]
        if name in commands and len(outside_cli) <= 1:
            continue  # a CLI command named like the library function it calls
        twins.append(f"{name}: {modules}")
    assert not twins, "top-level names defined more than once:\n" + "\n".join(twins)


@pytest.mark.parametrize("probe", ["upward", "cycle"])
def test_the_checks_can_fail(probe: str) -> None:
    """The checks see a planted violation (they are not vacuous)."""
    fake = "mmlatch.data.fake_probe"
    code = "from mmlatch.analysis import predict\n" if probe == "upward" else "import mmlatch.data.fake_probe2\n"
    extra = {fake: (PACKAGE / "data" / "fake_probe.py", ast.parse(code))}
    if probe == "cycle":
        extra["mmlatch.data.fake_probe2"] = (PACKAGE / "data" / "fake_probe2.py", ast.parse("import mmlatch.data.fake_probe\n"))
    globals()["SOURCES"], saved = {**SOURCES, **extra}, SOURCES
    try:
        with pytest.raises(AssertionError):
            (test_nothing_imports_upward if probe == "upward" else test_no_import_cycles)()
    finally:
        globals()["SOURCES"] = saved
