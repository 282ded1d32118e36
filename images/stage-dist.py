"""Copy every installed file of the named distributions into a staging root (used by the
image builds): `python stage-dist.py /stage stbench` turns /opt/venv/bin/stbench into
/stage/opt/venv/bin/stbench, and so on for each file in the distribution's RECORD
(modules, their .pyc, dist-info, console scripts).

The final image then takes the dependencies' venv as one cached layer and only this small
tree as a second one, so a change to stbench's code does not rewrite the 470 MB venv layer.
"""

import importlib.metadata
import os
import shutil
import sys


def main() -> int:
    stage, names = sys.argv[1], sys.argv[2:]
    copied = 0
    for name in names:
        dist = importlib.metadata.distribution(name)
        for entry in dist.files or ():
            src = os.path.normpath(os.path.abspath(dist.locate_file(entry)))
            if not os.path.isfile(src):
                continue
            dst = os.path.join(stage, src.lstrip("/"))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(src, dst)
            copied += 1
    print(f"staged {copied} files of {', '.join(names)} under {stage}")
    return 0 if copied else 1


if __name__ == "__main__":
    sys.exit(main())
