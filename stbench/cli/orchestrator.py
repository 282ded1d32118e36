"""`stbench-orchestrator`: the orchestrator image's entrypoint.

`docker run stbench-orchestrator --method ASHA` runs one study in the container, like
`stbench run`, with `--benchmark` defaulting to $STBENCH_BENCHMARK or mlp_digits and results
under $STBENCH_RESULTS_ROOT (default /results, mount a volume there to keep them).
"""

from __future__ import annotations

import os
import sys

from stbench.cli.main import main as stbench_main


def _has_flag(argv: list[str], name: str) -> bool:
    spellings = {f"--{name}", f"--{name.replace('_', '-')}"}
    return any(arg in spellings or arg.split("=")[0] in spellings for arg in argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:
        print("stbench-orchestrator: error: the SageMaker orchestrator mode (`train`) is not "
              "available yet; pass `stbench run` flags instead", file=sys.stderr)
        return 2
    if argv[:1] in (["-h"], ["--help"]):
        return stbench_main(["run", "--help"])
    if not _has_flag(argv, "benchmark"):
        argv = ["--benchmark", os.environ.get("STBENCH_BENCHMARK", "mlp_digits"), *argv]
    if not _has_flag(argv, "results_root"):
        argv = ["--results_root", os.environ.get("STBENCH_RESULTS_ROOT", "/results"), *argv]
    return stbench_main(["run", *argv])


if __name__ == "__main__":
    sys.exit(main())
