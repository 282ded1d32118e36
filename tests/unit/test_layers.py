"""Dependencies point down (docs/design.md, "Layers"): nothing below the command line imports
`stbench.cli`, and the model imports neither AWS nor Docker. A cycle or an upward import
here is what once made `stbench status` and `cleanup` import the CLI that imports them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "stbench"
BELOW_CLI = ("launch", "backends", "orchestration", "model")
CLI = re.compile(r"^stbench\.cli(\.|:|$)")
AWS_OR_DOCKER = re.compile(r"^(boto3|botocore|docker)(\.|$)")


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
