"""Failing trials, and throttling and capacity: what a study rides out.

faults-*: synthetic_curves with `--failure_probability 0.3` (an exception at a random epoch)
and `--kill_probability 0.3` (the trial SIGKILLs itself mid-epoch, as the OOM killer does), RS
with 2 workers and `--max_failures 3`, through `stbench run` on local processes, on the
docker back-end, and with `--backend sagemaker` on the local SageMaker endpoint, which also
throttles 30 % of SageMaker and CloudWatch Logs calls and refuses 30 % of CreateTrainingJob
calls with ResourceLimitExceeded. Counted per experiment: trials, failed trials against
max_failures, reports emitted (`[tune-metric]` lines of each trial's std.out) against
reports stored (rows of results.jsonl), failed trials with a reason, SIGKILLed trials, and
the throttled calls, back-offs and capacity refusals the job back-end rode out.
throttled-study: on that endpoint, a study without trial faults (8 trials) must complete with
no trial failed. no-quota: a training-job quota of 0 (`--no_quota_check`,
`--max_capacity_wait 10`) must end the run with one line, status failed, after the bounded
wait.

    python bench/reliability_faults.py [--seeds 3] [--only faults-local faults-docker ...] [--write]

Needs a Docker engine, the trainer image (`make build`) and Debian's docker-registry.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(REPO / "tests"))

import fault_runs as faults  # noqa: E402  (tests/)
from docs_section import publish  # noqa: E402  (this folder)
from warm_pools import pushed_trainer, registry  # noqa: E402

from stbench.emulator import Emulator  # noqa: E402
from stbench.emulator.account import ensure_bucket, ensure_execution_role  # noqa: E402
from stbench.orchestration.store import experiment_dir  # noqa: E402

SECTION = "## Failing trials, throttling and capacity (bench/reliability_faults.py)"
DOC = REPO / "docs" / "reliability.md"
ENDPOINT = faults.faulty_endpoint(cold_start_seconds=0.5, warm_start_seconds=0.2,
                                  log_delay_seconds=1.0, checkpoint_sync_seconds=5.0,
                                  stop_grace_seconds=10.0)
RUN = ["--benchmark", "synthetic_curves", "--method", "RS", "--n_workers", "2",
       "--epochs", "5", "--epoch_duration", "0.1", "--max_wallclock_time", "240"]
MAX_FAILURES = 3
STUDY_TRIALS = 8
CAPACITY_WAIT = 10
FAULTS = ("faults-local", "faults-docker", "faults-sagemaker")  # max_failures applies
SCENARIOS = (*FAULTS, "throttled-study", "no-quota")


@dataclass
class Outcome:
    scenario: str
    seed: int
    found: faults.FaultAudit
    in_order: bool
    seconds: float
    exit_code: int
    last_line: str


def say(message: str) -> None:
    print(f"reliability_faults: {message}", file=sys.stderr, flush=True)


def run(scenario: str, seed: int, flags: list[str], root: Path,
        env: dict[str, str]) -> Outcome:
    """`stbench run` in a process of its own, as a user runs it; what it left behind."""
    tag = f"{scenario}-{seed}"
    command = [sys.executable, "-m", "stbench.cli.main", "run", *RUN, "--random_seed",
               str(seed), "--experiment_tag", tag, "--results_root", str(root), *flags]
    began = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=root)
    seconds = time.monotonic() - began
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    last = next((line for line in reversed(lines) if "-> " in line or "error:" in line), "")
    folder = experiment_dir(root, tag, "synthetic_curves", "RS", 0)
    say(f"{tag}: exit {done.returncode} in {seconds:.0f} s: {last[-160:]}")
    return Outcome(scenario, seed, faults.audit(folder), faults.epochs_in_order(folder),
                   seconds, done.returncode, last)


def table(outcomes: list[Outcome], seeds: int, elapsed: float, load: str,
          command: str) -> list[str]:
    lines = [SECTION, "", f"`{command}` on {time.strftime('%Y-%m-%d')}, {seeds} seeds, "
             f"{elapsed / 60:.0f} min on a {os.cpu_count()}-core machine (load average {load} "
             "at the start). Endpoint: 30 % of SageMaker and CloudWatch Logs calls throttled, "
             "30 % of CreateTrainingJob calls refused with ResourceLimitExceeded. Each failed "
             "trial's reason is in its rows of results.jsonl (`failure_reason`).", "",
             "| scenario | seed | trials | failed / max_failures | reports emitted → stored "
             "(after stop) | reasons recorded | SIGKILLed | throttled calls / back-offs / "
             "capacity refusals retried | outcome |",
             "|---|---|---|---|---|---|---|---|---|"]
    for o in outcomes:
        f = o.found
        emitted, stored = sum(f.emitted.values()), sum(f.stored.values())
        retries = (" / ".join(str(f.retries.get(key, 0)) for key in
                              ("throttled_calls", "backoffs", "capacity_refusals"))
                   if f.retries else "-")
        order = "" if o.in_order else " (epochs out of order!)"
        lost = f", {f.lost} lost!" if f.lost else ""
        outcome = f"{f.status}: {f.reason}" if o.scenario != "no-quota" else (
            f"{f.status} after {o.seconds:.0f} s, exit {o.exit_code}")
        lines.append(
            f"| {o.scenario} | {o.seed} | {len(f.statuses)} | {len(f.failed)} / "
            f"{MAX_FAILURES if o.scenario in FAULTS else '-'} | {emitted} → {stored} "
            f"({f.after_stop}){lost}{order} | {sum(map(bool, f.reasons.values()))} / "
            f"{len(f.failed)} | {f.sigkilled} | {retries} | {outcome} |")
    quota = [o for o in outcomes if o.scenario == "no-quota"]
    if quota:
        lines += ["", "The line `no-quota` printed (training-job quota 0, "
                  f"`--max_capacity_wait {CAPACITY_WAIT}`):", "", "```", quota[0].last_line,
                  "```"]
    return lines + ["", *RELY_ON]


RELY_ON = """\
### What a user can rely on

- **max_failures.** The experiment ends at the poll that sees its max_failures-th failed
  trial, with status `failed` and the reason `N trials failed (max_failures=M)`. No trial
  starts after that failure: a job that failed while its last log lines are still being
  read keeps its worker until the failure is counted, and a trial that ended after the
  last poll is read again before a new one starts when it could reach the limit. Trials
  still running are stopped and recorded `Stopped`, not failed. Trials that failed in the
  same poll as the last allowed one did fail, and count: with one worker the count is
  exactly max_failures; with n workers it can exceed it by at most n - 1.
- **Reports.** Every report a trial printed before it ended, or before stbench stopped it,
  is in results.jsonl, once and in epoch order, whether the trial completed, raised or
  was SIGKILLed. A trial that is stopped may print more before the stop reaches it; those
  reports are not results, as in Syne Tune (the table's `after stop`).
- **Reasons.** Every failed trial's rows carry `failure_reason`: on local processes
  `exit code 1: RuntimeError: …` (the last line of stderr) or `killed by signal SIGKILL
  (out of memory?)`; in containers and on SageMaker the trainer writes the same words,
  plus the last stderr lines, to `/opt/ml/output/failure`, which SageMaker shows as
  FailureReason and stbench records. A trial that ended without reporting the metric is
  `finished without reporting metric '…'`.
- **Throttling.** A throttled SageMaker or CloudWatch Logs call is retried by botocore
  (adaptive mode, 8 attempts), then by the job back-end (exponential back-off with
  jitter; a throttled poll is skipped and repeated): it never fails a trial. The counts
  are in metadata.json (`retries`: `throttled_calls`, `backoffs`, `capacity_refusals`)
  and at the end of the summary line (`(retried 45 throttled calls, 4 capacity refusals)`).
- **Capacity.** ResourceLimitExceeded on CreateTrainingJob is not a trial failure: the
  back-end waits 1 s, then twice as long each time up to 30 s, and tries again. A quota
  that never frees up ends the experiment after `--max_capacity_wait` seconds (default
  3600) with status `failed`, exit code 2 and one line naming
  the quota and the fixes. `stbench launch` waits for orchestrator capacity the same way,
  60 s between tries, for at most `--max_capacity_wait`, then says which jobs it launched.
  While the back-end waits for capacity it starts nothing else; trials already running
  keep running and their reports are read after the wait.
""".splitlines()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--write", action="store_true", help=f"update {DOC.name}")
    args = parser.parse_args()
    load = f"{os.getloadavg()[0]:.1f}"
    began = time.monotonic()
    outcomes: list[Outcome] = []
    seeds = range(1, args.seeds + 1)
    user_env = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true"}
    with tempfile.TemporaryDirectory(prefix="stbench-faults-") as tmp:
        root = Path(tmp)
        for backend in ("local", "docker"):
            if f"faults-{backend}" in args.only:
                outcomes += [run(f"faults-{backend}", seed, ["--backend", backend,
                                                         "--max_failures", str(MAX_FAILURES),
                                                         *faults.FAULT_ARGS], root, user_env)
                             for seed in seeds]
        if {"faults-sagemaker", "throttled-study", "no-quota"} & set(args.only):
            with registry(root) as address, Emulator(ENDPOINT) as emulator, \
                    pushed_trainer(address) as image:
                env = {**user_env, **emulator.environment()}
                env.pop("AWS_PROFILE", None)
                sagemaker = ["--backend", "sagemaker", "--image", image,
                             "--role", ensure_execution_role(env),
                             "--s3_root", f"{ensure_bucket(env, 'faults')}/bench"]
                if "faults-sagemaker" in args.only:
                    outcomes += [run("faults-sagemaker", seed, [*sagemaker, "--max_failures",
                                                            str(MAX_FAILURES), *faults.FAULT_ARGS],
                                     root, env) for seed in seeds]
                if "throttled-study" in args.only:
                    outcomes += [run("throttled-study", seed, [*sagemaker, "--max_num_trials",
                                                        str(STUDY_TRIALS)], root, env)
                                 for seed in seeds]
                if "no-quota" in args.only:
                    outcomes.append(run("no-quota", 1, [
                        *sagemaker, "--instance_type", faults.NO_QUOTA_INSTANCE, "--no_quota_check",
                        "--max_capacity_wait", str(CAPACITY_WAIT)], root, env))
    command = "python bench/reliability_faults.py " + " ".join(sys.argv[1:])
    publish(table(outcomes, args.seeds, time.monotonic() - began, load, command.strip()),
            args.write, DOC)


if __name__ == "__main__":
    main()
