"""A user's own benchmark folder, as a new user writes one: a Syne Tune script, its YAML, a
`requirements.txt` naming a wheel shipped beside them (built here, so nothing is downloaded)
and, beside the folder, a data folder given as an input channel."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

PACKAGE = "stbench_tinydep"
WHEEL = f"{PACKAGE}-0.1-py3-none-any.whl"

SCRIPT = f'''\
"""Minimises (x - OFFSET)^2; OFFSET comes from a package that requirements.txt installs."""
import argparse
import os
import time
from pathlib import Path

from syne_tune import Reporter

import {PACKAGE}

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float, required=True)
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--sleep", type=float, default=0.0)
args, _ = parser.parse_known_args()
channel = os.environ.get("SM_CHANNEL_EXTRA")
scale = float((Path(channel) / "scale.txt").read_text()) if channel else 1.0
print("tinydep from", {PACKAGE}.__file__, "cwd", os.getcwd(), flush=True)
report = Reporter()
for epoch in range(1, args.epochs + 1):
    time.sleep(args.sleep)
    report(epoch=epoch, loss=scale * (args.x - {PACKAGE}.OFFSET) ** 2 / epoch,
           scale=scale, helper=float(Path(__file__).with_name("helper.txt").read_text()))
'''

YAML = """\
name: {name}
script: train.py
config_space:
  x: {{type: uniform, lower: 0.0, upper: 1.0}}
  epochs: 2
  sleep: 0.0
metric: loss
mode: min
max_resource_attr: epochs
resource_attr: epoch
max_wallclock_time: 60
n_workers: 1
instance_type: ml.c5.xlarge
{inputs}"""


def write_wheel(folder: Path, offset: float = 0.25) -> Path:
    """A pure-Python wheel written by hand (no build tools, no index)."""
    info = f"{PACKAGE}-0.1.dist-info"
    files = {
        f"{PACKAGE}/__init__.py": f"OFFSET = {offset}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: 0.1\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: stbench-tests\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / WHEEL
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def write_user_benchmark(root: Path, name: str = "my_bench", requirements: str | None = None,
                         data: bool = False) -> Path:
    """`root/<name>/` with train.py, <name>.yaml, helper.txt, wheels/ and requirements.txt;
    with `data`, `root/<name>-data/scale.txt` as the input channel `extra`. Returns the YAML."""
    folder = root / name
    write_wheel(folder / "wheels")
    (folder / "train.py").write_text(SCRIPT)
    (folder / "helper.txt").write_text("7\n")
    (folder / "requirements.txt").write_text(requirements or f"./wheels/{WHEEL}\n")
    inputs = ""
    if data:
        (root / f"{name}-data").mkdir(exist_ok=True)
        (root / f"{name}-data" / "scale.txt").write_text("3\n")
        inputs = f"inputs: {{extra: ../{name}-data}}\n"
    yaml = folder / f"{name}.yaml"
    yaml.write_text(YAML.format(name=name, inputs=inputs))
    return yaml
