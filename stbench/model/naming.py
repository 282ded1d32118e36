"""SageMaker training-job names: at most 63 characters of [a-zA-Z0-9-], unique, prefix-free.

Names are `<base>-t<trial:06d>-r<run:02d>`: fixed-width suffixes mean no job name of an
experiment is a prefix of another one (t1 vs t10), which matters for prefix-based listing.
"""

from __future__ import annotations

import hashlib
import re

from stbench.model.errors import UserError

MAX_JOB_NAME = 63
SUFFIX_LENGTH = len("-t000000-r00")
_INVALID = re.compile(r"[^a-zA-Z0-9-]+")
JOB_NAME = re.compile(r"^(?P<base>.+)-(?P<kind>o\d{2}|t\d{6}-r\d{2})$")  # orchestrator | trial
MAX_HASHED_SEED = 1000  # hashed names (long tags) hide the seed: these are tried
# in every job's Environment, which DescribeTrainingJob returns: how status and cleanup
# recognise the jobs of a user benchmark, whose name no built-in list holds
TAG_ENV = "STBENCH_EXPERIMENT_TAG"


def experiment_base(experiment_tag: str, benchmark: str, method: str, seed: int) -> str:
    """A readable, valid base for one experiment's job names; hashed when too long."""
    raw = f"{experiment_tag}-{benchmark}-{method}-{seed}"
    base = _INVALID.sub("-", raw).strip("-").lower()
    room = MAX_JOB_NAME - SUFFIX_LENGTH
    if len(base) > room:
        digest = hashlib.sha1(raw.encode()).hexdigest()[:8]
        base = f"{base[: room - 9].rstrip('-')}-{digest}"
    return base


def job_name(base: str, trial_id: int, run: int = 0) -> str:
    if not 0 <= trial_id < 10**6 or not 0 <= run < 100:
        raise UserError(f"trial {trial_id} run {run} does not fit a job name; start a new tag")
    name = f"{base}-t{trial_id:06d}-r{run:02d}"
    if len(name) > MAX_JOB_NAME or _INVALID.search(name):
        raise UserError(f"job name '{name}' is not a valid SageMaker name; shorten the tag")
    return name


def trial_job_prefix(base: str) -> str:
    """`<base>-t`: the NameContains / log-stream prefix of an experiment's trial jobs. Seed 1's
    base is a prefix of seed 10's, so matches are confirmed with `is_trial_job`."""
    return f"{base}-t"


def is_trial_job(base: str, name: str) -> bool:
    """Whether `name` is `job_name(base, trial, run)`: the fixed-width suffix leaves no other
    base (seed 10 for seed 1, tag `ba` for tag `a`) a way to match."""
    match = JOB_NAME.match(name)
    return match is not None and match["base"] == base and match["kind"][0] == "t"


def orchestrator_job_name(base: str, run: int = 0) -> str:
    """`<base>-o<run:02d>`: never a prefix of, nor prefixed by, the trial jobs' `<base>-t…`."""
    if not 0 <= run < 100:
        raise UserError(f"experiment {base} was launched 100 times; start a new tag")
    return f"{base}-o{run:02d}"


def name_key(tag: str) -> str:
    """A substring of every job name of the tag, hashed ones too: the NameContains filter."""
    key = re.sub(r"[^a-zA-Z0-9-]+", "-", tag).strip("-").lower()
    key = key[: MAX_JOB_NAME - SUFFIX_LENGTH - 9].rstrip("-")
    if not key:
        raise UserError(f"experiment tag '{tag}' has no letters or digits: pass the study's tag")
    return key
