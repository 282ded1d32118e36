#!/usr/bin/env python3
"""Print the Debian archive mirror this host's apt uses (for debootstrap), e.g. an http URI.

Reads /etc/apt/sources.list and /etc/apt/sources.list.d/*.list (one-line format) and
/etc/apt/sources.list.d/*.sources (deb822 format). Prefers an enabled `deb` entry with
component `main` whose suites include the wanted codename (argv[1], default bookworm), then
any such entry for a main-archive suite (no `-security`/`-updates` style suffix). Exits 1
when nothing fits. Nothing here names a mirror: it is the host's configuration.
"""

import glob
import os
import sys

ROOT = os.environ.get("APT_ROOT", "/")


def one_line(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            kind, rest = parts[0], parts[1:]
            if rest and rest[0].startswith("["):  # [arch=amd64 signed-by=...]
                while rest and not rest[0].endswith("]"):
                    rest = rest[1:]
                rest = rest[1:]
            if len(rest) >= 2:
                yield {"types": [kind], "uris": [rest[0]], "suites": [rest[1]],
                       "components": rest[2:], "enabled": True}


def deb822(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    stanza, key = {}, None
    for raw in text.splitlines() + [""]:
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if stanza:
                yield {
                    "types": stanza.get("types", "").split(),
                    "uris": stanza.get("uris", "").split(),
                    "suites": stanza.get("suites", "").split(),
                    "components": stanza.get("components", "").split(),
                    "enabled": stanza.get("enabled", "yes").strip().lower() != "no",
                }
            stanza, key = {}, None
        elif raw[0] in " \t" and key:
            stanza[key] += " " + raw.strip()
        elif ":" in raw:
            key, value = raw.split(":", 1)
            key = key.strip().lower()
            stanza[key] = value.strip()


def entries():
    base = os.path.join(ROOT, "etc/apt")
    paths = [os.path.join(base, "sources.list")] + sorted(
        glob.glob(os.path.join(base, "sources.list.d/*.list")))
    for p in paths:
        if os.path.isfile(p):
            yield from one_line(p)
    for p in sorted(glob.glob(os.path.join(base, "sources.list.d/*.sources"))):
        yield from deb822(p)


def main():
    codename = sys.argv[1] if len(sys.argv) > 1 else "bookworm"
    usable = [e for e in entries()
              if e["enabled"] and "deb" in e["types"] and "main" in e["components"]
              and any(u.startswith(("http://", "https://")) for u in e["uris"])]
    ranked = ([e for e in usable if codename in e["suites"]]
              + [e for e in usable if any("-" not in s and "/" not in s for s in e["suites"])])
    for e in ranked:
        for uri in e["uris"]:
            if uri.startswith(("http://", "https://")):
                print(uri.rstrip("/"))
                return 0
    print("no Debian mirror found in the host's apt configuration", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
