"""Which listed jobs belong to a study: status and cleanup must never touch another study's.

A job name is `<experiment_base(tag, benchmark, method, seed)>-o00` or `…-t000001-r00`.
For the built-in benchmarks the base is checked against every (benchmark, method) the tag
could give (`naming.tag_matcher`). A user benchmark's name is in no list, so a job whose base
is not a built-in one of another tag is described once per base and recognised by the
`STBENCH_EXPERIMENT_TAG` its request put into its Environment (DescribeTrainingJob returns
it; job tags would need a ListTags call per job, and moto does not keep them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stbench.model.naming import JOB_NAME, TAG_ENV, builtin_suffixes, tag_matcher


def study_matcher(tag: str, describe: Callable[[str], dict[str, Any]]) -> Callable[[str], bool]:
    """`matches(job_name)`: built-in bases by name, others by one describe per base."""
    builtin = tag_matcher(tag)
    suffixes = builtin_suffixes()
    verdicts: dict[str, bool] = {}

    def matches(name: str) -> bool:
        if builtin(name):
            return True
        match = JOB_NAME.match(name)
        if match is None:
            return False
        base = match["base"]
        if base not in verdicts:
            # another tag's built-in benchmark (`study-2` for `study`): no call needed
            seedless = base.rstrip("0123456789")
            other_builtin = any(seedless.endswith(suffix) for suffix in suffixes)
            verdicts[base] = not other_builtin and (
                (describe(name).get("Environment") or {}).get(TAG_ENV) == tag)
        return verdicts[base]
    return matches
