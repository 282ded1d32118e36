"""Which listed jobs belong to a study: status and cleanup must never touch another study's.

A job name is `<experiment_base(tag, benchmark, method, seed)>-o00` or `…-t000001-r00`. The
name alone cannot tell: a user benchmark's base may read like another tag's built-in one
(tag `study` with benchmark `my_mlp_digits` and tag `study-my` with `mlp_digits` give the
same base). So a base that starts with the tag's is described once and recognised by the
`STBENCH_EXPERIMENT_TAG` its request put into its Environment (DescribeTrainingJob returns
it; job tags would need a ListTags call per job, and moto does not keep them); a job from
before that variable is the tag's when its base is a built-in benchmark's of the tag
(`tag_matcher`). A base that does not start with the tag's is never the study's and
costs no call.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from stbench.methods.registry import METHODS
from stbench.model.catalog import builtin_names
from stbench.model.naming import (
    JOB_NAME,
    MAX_HASHED_SEED,
    TAG_ENV,
    experiment_base,
    name_key,
)

_SEED = re.compile(r"-(\d+)$")
_DIGEST = re.compile(r"-[0-9a-f]{8}$")  # experiment_base hashes bases that are too long


def study_matcher(tag: str, describe: Callable[[str], dict[str, Any]]) -> Callable[[str], bool]:
    """`matches(job_name)`: one describe per base that could be the tag's."""
    builtin = tag_matcher(tag)
    # every base of the tag starts so, hashed ones (long tags) too: `experiment_base` keeps
    # the tag's first characters, as `name_key` does
    head = f"{name_key(tag)}-"
    verdicts: dict[str, bool] = {}

    def matches(name: str) -> bool:
        match = JOB_NAME.match(name)
        if match is None or not match["base"].startswith(head):
            return False
        base = match["base"]
        if base not in verdicts:
            recorded = (describe(name).get("Environment") or {}).get(TAG_ENV)
            verdicts[base] = recorded == tag if recorded is not None else builtin(name)
        return verdicts[base]
    return matches


def tag_matcher(tag: str) -> Callable[[str], bool]:
    """A job is the tag's if its base is `experiment_base(tag, benchmark, method, seed)` for a
    built-in benchmark, a method and a seed."""
    combos = [(b, m) for b in builtin_names() for m in METHODS]
    hashed: set[str] = set()  # on first need: a hashed base (long tag) hides its seed

    def matches(name: str) -> bool:
        base = match["base"] if (match := JOB_NAME.match(name)) else ""
        if (seed := _SEED.search(base)) and any(
                experiment_base(tag, b, m, int(seed[1])) == base for b, m in combos):
            return True
        if not _DIGEST.search(base):
            return False
        hashed.update(() if hashed else (experiment_base(tag, b, m, s) for b, m in combos
                                         for s in range(MAX_HASHED_SEED)))
        return base in hashed
    return matches
