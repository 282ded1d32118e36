"""Every reliability figure of docs/reliability.md in one command.

Runs, one after the other, the three benches that own a section of that page:
  bench/reliability_table.py   bad input: the table of rejected inputs, from the tests
  bench/reliability_faults.py  failing trials, throttling and capacity
  bench/reliability_kills.py   kill -9 and resume, stop signals

    python bench/reliability.py                 # print every section
    python bench/reliability.py --write         # and update docs/reliability.md
    python bench/reliability.py --kills 5 --seeds 1   # a quicker pass

Each part stays runnable on its own (with its own --only choices); this driver only passes
the shared options on. Needs a Docker engine, the images (`make build`) and Debian's
docker-registry, as the parts do.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the fault runs")
    parser.add_argument("--kills", type=int, default=20,
                        help="kills and signals per back-end")
    parser.add_argument("--write", action="store_true", help="update docs/reliability.md")
    args = parser.parse_args()
    write = ["--write"] if args.write else []
    parts = [
        ["reliability_table.py", *write],
        ["reliability_faults.py", "--seeds", str(args.seeds), *write],
        ["reliability_kills.py", "--kills", str(args.kills), *write],
    ]
    failed = []
    for script, *options in parts:
        start = time.monotonic()
        print(f"== bench/{script} {' '.join(options)}", flush=True)
        code = subprocess.call([sys.executable, str(BENCH / script), *options])
        print(f"== bench/{script}: exit {code} after {time.monotonic() - start:.0f} s", flush=True)
        if code:
            failed.append(script)
    if failed:
        sys.exit(f"bench/reliability.py: {', '.join(failed)} failed (see above)")


if __name__ == "__main__":
    main()
