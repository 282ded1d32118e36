"""Methods of installed packages: the `stbench.methods` entry-point group.

A package declares, in its pyproject.toml,

    [project.entry-points."stbench.methods"]
    MYMETHOD = "my_package.module:METHOD"

where the object is a `registry.Method` (or a callable returning one) whose name is the entry
point's. A package that fails to load, or whose method is malformed or takes a built-in's name,
is one line naming the package and the fix: a study must never silently run without a method
the user installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from importlib.metadata import EntryPoint, entry_points

from stbench.methods.method import Method
from stbench.model.errors import UserError
from stbench.model.method_args import NAME

GROUP = "stbench.methods"


def load_plugins(builtin: Mapping[str, Method]) -> list[Method]:
    """Every installed entry point's method, each tagged with its distribution's name."""
    methods: list[Method] = []
    for point in sorted(entry_points(group=GROUP), key=lambda p: p.name):
        method = _load(point)
        package = _package(point)
        if method.name in builtin or any(m.name == method.name for m in methods):
            raise UserError(f"package {package} registers method {method.name}, which "
                            f"another method already has; rename its entry point "
                            f"({GROUP}) or uninstall {package}")
        methods.append(replace(method, package=package))
    return methods


def _load(point: EntryPoint) -> Method:
    package = _package(point)
    fix = f"fix or uninstall package {package}"
    try:
        loaded = point.load()
        method = loaded if isinstance(loaded, Method) or not callable(loaded) else loaded()
    except Exception as err:  # any import-time failure of someone else's code
        raise UserError(f"method {point.name} of package {package} ({GROUP} entry point "
                        f"{point.value}) does not load: {type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else ''}; {fix}") from None
    if not isinstance(method, Method):
        raise UserError(f"entry point {point.name} of package {package} ({point.value}) is "
                        f"a {type(method).__name__}, not a stbench Method; {fix}")
    if method.name != point.name or not NAME.match(method.name):
        raise UserError(f"package {package}'s entry point {point.name} gives method "
                        f"'{method.name}': a method is named as its entry point, with letters, "
                        f"digits, _ and -; {fix}")
    return method


def _package(point: EntryPoint) -> str:
    dist = getattr(point, "dist", None)
    return dist.name if dist is not None else point.value.split(":")[0].split(".")[0]
