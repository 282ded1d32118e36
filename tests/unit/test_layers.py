"""Dependencies point down (docs/design.md, "Layers"): nothing below the command line imports
`stbench.cli`, the model imports neither AWS, Docker, SciPy nor scikit-learn, no module reaches
itself through imports, and design.md's layer table and module list are the tree's. A cycle
or an upward import here is what once made `stbench status` and `cleanup` import the CLI that
imports them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "stbench"
BELOW_CLI = ("launch", "backends", "orchestration", "methods", "model")
CLI = re.compile(r"^stbench\.cli(\.|:|$)")
AWS_OR_DOCKER = re.compile(r"^(boto3|botocore|docker)(\.|$)")
NUMERICS = re.compile(r"^(scipy|sklearn)(\.|$)")  # the methods' GP searchers bring them


def imported_names(source: str, module: str) -> list[tuple[int, str]]:
    """(line, dotted name) of every import, relative ones resolved against `module`, plus
    string constants naming a stbench module (lazy `importlib` targets such as
    "stbench.cli.status:cmd_status")."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[:-node.level]
                base = ".".join([*parent, base] if base else parent)
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and node.value.startswith("stbench.")):
            found.append((node.lineno, node.value))
    return found


def offences(layer: str, forbidden: re.Pattern[str]) -> list[str]:
    out = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for line, name in imported_names(path.read_text(), module):
            if forbidden.match(name):
                out.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    return out


@pytest.mark.parametrize("layer", BELOW_CLI)
def test_no_layer_below_the_cli_imports_it(layer: str) -> None:
    assert (PACKAGE / layer).is_dir()
    assert offences(layer, CLI) == []


def test_the_model_imports_neither_aws_nor_docker() -> None:
    assert offences("model", AWS_OR_DOCKER) == []


def test_the_model_imports_neither_scipy_nor_scikit_learn() -> None:
    assert offences("model", NUMERICS) == []


def test_every_spelling_of_an_upward_import_is_caught() -> None:
    source = ("import stbench.cli.main\n"
              "from stbench import cli\n"
              "from ..cli.main import OneLineParser\n"
              "def f():\n    from stbench.cli.main import guarded\n"
              "TARGET = 'stbench.cli.status:cmd_status'\n"
              "import botocore.config\n")
    found = imported_names(source, "stbench.launch.status")
    assert {line for line, name in found if CLI.match(name)} == {1, 2, 3, 5, 6}
    assert {line for line, name in found if AWS_OR_DOCKER.match(name)} == {7}
    assert not any(CLI.match(name) for name in ("stbench.client", "stbench.model.cli_args"))


# --- The import graph: every import of every module, at any depth (inside functions, under
# TYPE_CHECKING) and lazy "module:attribute" targets, resolved to the stbench module it names.
# `from package import module` is an import of that module; the root package `stbench` (its
# `__version__`) belongs to no layer.

DESIGN = PACKAGE.parent / "docs" / "design.md"
LAZY_TARGET = re.compile(r"^stbench(\.\w+)+:\w+$")
# Cycles still to be taken apart; each leaves this list once it is gone (the test says so).
KNOWN_CYCLES: list[set[str]] = []


def stbench_modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def dependencies(source: str, module: str, modules: set[str],
                 top_level_only: bool = False) -> set[str]:
    """The stbench modules that `module` imports (or only those its top level imports)."""
    tree = ast.parse(source)
    nodes = tree.body if top_level_only else ast.walk(tree)
    names = []
    for node in nodes:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[:-node.level]
                base = ".".join([*package, base] if base else package)
            names += [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Constant) and LAZY_TARGET.match(str(node.value)):
            names.append(node.value.split(":")[0])
    found = set()
    for name in names:
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in modules and name not in (module, "stbench"):
            found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = stbench_modules()
    graph = {}
    for name, path in modules.items():
        as_file = f"{name}.__init__" if path.name == "__init__.py" else name
        graph[name] = dependencies(path.read_text(), as_file, set(modules))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Modules that reach each other through imports (strongly connected, Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = {stack.pop()}
            while node not in component:
                component.add(stack.pop())
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_reaches_itself_through_imports() -> None:
    found = cycles(import_graph())
    assert [sorted(c) for c in found if c not in KNOWN_CYCLES] == []
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in found]
    assert gone == [], "this cycle is gone: remove it from KNOWN_CYCLES"


def test_a_cycle_through_an_import_inside_a_function_is_found() -> None:
    modules = {"stbench", "stbench.p", "stbench.p.a", "stbench.p.b", "stbench.p.c"}
    sources = {"stbench.p.a": "from stbench.p import b\n",
               "stbench.p.b": "def f():\n    from .c import thing\n",
               "stbench.p.c": "TARGET = 'stbench.p.a:run'\nimport stbench\n"}
    graph = {name: dependencies(text, name, modules) for name, text in sources.items()}
    assert graph == {"stbench.p.a": {"stbench.p.b"}, "stbench.p.b": {"stbench.p.c"},
                     "stbench.p.c": {"stbench.p.a"}}
    assert cycles(graph) == [{"stbench.p.a", "stbench.p.b", "stbench.p.c"}]
    assert cycles({**graph, "stbench.p.c": set()}) == []


# --- docs/design.md against the tree.

def design_section(heading: str) -> str:
    text = DESIGN.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def split_top_level(cell: str) -> list[str]:
    """`a, b (x, y), c` -> ['a', 'b (x, y)', 'c']: commas inside parentheses stay."""
    parts, depth, current = [], 0, ""
    for char in cell:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return [*parts, current.strip()] if current.strip() else parts


def layer_table() -> dict[str, tuple[str, dict[str, set[str] | None]]]:
    """layer -> (package, {imported layer: the modules allowed to import it, or None: any})
    from the table of design.md's "Layers": "model, back-ends (only in `backend_factory`)"."""
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in design_section("Layers").splitlines() if line.startswith("| ")]
    assert rows[0] == ["layer", "package", "holds", "imports from stbench"]
    table = {row[0]: (row[1].strip("`").removeprefix("stbench/"), row[3]) for row in rows[1:]}
    parsed = {}
    for layer, (package, cell) in table.items():
        imports: dict[str, set[str] | None] = {}
        for part in ([] if cell == "nothing else" else split_top_level(cell)):
            name = part.split(" (")[0]
            assert name in table, f"design.md: {layer} imports '{name}', no layer of the table"
            note = part[len(name):].strip(" ()")
            imports[name] = (set(re.findall(r"`(\w+)`", note)) if note.startswith("only in")
                             else None)
        parsed[layer] = (package, imports)
    return parsed


def test_the_layer_table_of_design_md_is_the_imports_between_packages() -> None:
    """Each layer imports exactly the layers its row names, from the modules it names."""
    table = layer_table()
    layer_of = {package: layer for layer, (package, _) in table.items()}
    assert set(layer_of) == {path.parent.relative_to(PACKAGE).parts[0]
                            for path in PACKAGE.glob("*/**/*.py")}
    modules = stbench_modules()
    found: dict[str, dict[str, set[str]]] = {layer: {} for layer in table}
    lazy_only: dict[str, dict[str, bool]] = {layer: {} for layer in table}
    for name, targets in import_graph().items():
        if name == "stbench":
            continue
        importer = name.split(".")
        layer = layer_of[importer[1]]
        top = dependencies(modules[name].read_text(), name, set(modules), top_level_only=True)
        for target in targets:
            target_layer = layer_of[target.split(".")[1]]
            if target_layer != layer:
                found[layer].setdefault(target_layer, set()).add(importer[-1])
                lazy = lazy_only[layer].get(target_layer, True)
                lazy_only[layer][target_layer] = lazy and target not in top
    for layer, (_, imports) in table.items():
        assert set(found[layer]) == set(imports), f"design.md's row of {layer}"
        for target_layer, allowed in imports.items():
            if allowed is not None:
                assert found[layer][target_layer] <= allowed, f"{layer} imports {target_layer}"
    assert lazy_only["orchestration"]["back-ends"], "the factory imports back-ends lazily"


def test_design_md_names_every_module() -> None:
    """Each module is named, as a path inside its package, in its layer's line of "What each
    module family holds"."""
    table = layer_table()
    family = design_section("Layers").split("What each module family holds:")[1]
    named: dict[str, set[str]] = {}
    for bullet in re.split(r"\n- ", family)[1:]:
        layer = re.match(r"\*\*(.+?)\*\*", bullet)
        assert layer and layer[1] in table, f"design.md: unknown layer in '- {bullet[:40]}'"
        named[table[layer[1]][0]] = set(re.findall(r"`([\w/]+\.py)`", bullet))
    missing = []
    for path in sorted(PACKAGE.glob("*/**/*.py")):
        package, *inner = path.relative_to(PACKAGE).parts
        if path.name != "__init__.py" and "/".join(inner) not in named.get(package, set()):
            missing.append(str(path.relative_to(PACKAGE.parent)))
    assert missing == []
