"""Where benchmarks are found by name: the built-in YAML files shipped in
`stbench/benchmarks/`, or a path to the user's own. Above the YAML reader, so the dataclass
module (`benchmark.py`) imports neither."""

from __future__ import annotations

from pathlib import Path

from stbench.model.benchmark import BUILTIN_DIR, Benchmark
from stbench.model.benchmark_yaml import parse_benchmark_file
from stbench.model.errors import UserError, did_you_mean


def builtin_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def resolve_path(name_or_path: str) -> Path:
    """A built-in name or a path to the user's own YAML file."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml"):
        try:
            candidate.stat()
        except PermissionError as err:  # not "not found": its folder is unreadable
            raise UserError(f"cannot read benchmark file {name_or_path}: {err.strerror}; "
                            "make it and its folders readable") from None
        except OSError:
            pass
        if not candidate.is_file():
            raise UserError(f"benchmark file {name_or_path} not found; check the path")
        return candidate.resolve()
    builtin = BUILTIN_DIR / f"{name_or_path}.yaml"
    if builtin.is_file():
        return builtin
    raise UserError(
        f"unknown benchmark '{name_or_path}'; valid ones: {', '.join(builtin_names())} "
        f"(or a path to your own .yaml){did_you_mean(name_or_path, builtin_names())}"
    )


def load_benchmark(name_or_path: str) -> Benchmark:
    return parse_benchmark_file(resolve_path(name_or_path))
