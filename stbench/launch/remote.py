"""Remote launch: one SageMaker training job running the orchestrator image per experiment.

Each (benchmark, method, seed) becomes a job whose hyperparameters are its one-experiment
spec (`ExperimentSpec.to_hyperparameters`); inside, `stbench-orchestrator train` runs it with
trials as SageMaker jobs and keeps its results in the job's checkpoint prefix. Everything is
checked before the first job is created, and relaunching skips experiments that are
running or completed, unless forced.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from stbench.backends.aws import error_code, error_message, read_s3_text, split_s3_uri
from stbench.backends.jobs.code_upload import code_uri, publish_code
from stbench.backends.jobs.job_requests import (
    JobTemplate,
    check_hyperparameters,
    training_job_request,
)
from stbench.backends.jobs.sagemaker_checks import (
    CheckedSetup,
    check_image,
    check_sagemaker_setup,
)
from stbench.backends.jobs.sagemaker_instances import (
    QUOTA_CLIENT,
    SKIP_FLAG,
    InstanceDemand,
    check_instance_type,
    check_quotas,
    read_quotas,
)
from stbench.launch.method_packages import pack_method_packages
from stbench.launch.study_file import Study
from stbench.model.backend_names import SAGEMAKER
from stbench.model.code_package import CODE_CHANNEL, METHODS_CHANNEL, CodePackage
from stbench.model.cost_estimate import (
    CostEstimate,
    duration,
    estimate,
    experiment_instances,
)
from stbench.model.errors import UserError
from stbench.model.images import orchestrator_image_for
from stbench.model.job_statuses import BUSY_JOB_STATUSES, COMPLETED
from stbench.model.method_args import tag_value
from stbench.model.naming import (
    JOB_NAME,
    TAG_ENV,
    experiment_base,
    orchestrator_job_name,
    trial_job_prefix,
)
from stbench.model.prices import PriceTable
from stbench.model.spec import ExperimentSpec
from stbench.orchestration.backend_factory import KEEP_ALIVE_SECONDS
from stbench.orchestration.planning import plan_run

ORCHESTRATOR_INSTANCE = "ml.m5.large"
SKIP_STATUSES = (*BUSY_JOB_STATUSES, COMPLETED)  # a launch again would run it twice
LAUNCH_MARGIN_SECONDS = 1800  # set-up, the last trials' stops and the results upload
ORCHESTRATOR_RETRIES = 10  # RetryStrategy.MaximumRetryAttempts (the API allows 1..30)


@dataclass(frozen=True)
class PlannedJob:
    name: str
    spec: ExperimentSpec  # one method, one seed
    request: dict[str, Any]
    skip_reason: str = ""
    code: CodePackage | None = None  # a user benchmark's folder, stored before the job starts
    study_root: str = ""  # s3://…/<tag>, where the folder is stored
    methods: CodePackage | None = None  # installed method packages, stored there too


class LaunchTarget(Protocol):
    """Where orchestrator jobs run: SageMaker (on AWS, or the local endpoint of
    `stbench emulator`, which boto3 reaches through AWS_ENDPOINT_URL)."""

    def check(self, spec: ExperimentSpec) -> CheckedSetup: ...

    def orchestrator_image(self, setup: CheckedSetup, override: str | None) -> str: ...

    def existing_jobs(self, tag: str) -> dict[str, str]: ...

    def create(self, request: dict[str, Any]) -> None: ...

    def publish_code(self, package: CodePackage, study_root: str) -> str: ...


class SageMakerTarget:
    def __init__(self, session: boto3.session.Session):
        self.session = session

    def check(self, spec: ExperimentSpec) -> CheckedSetup:
        check_instance_type(ORCHESTRATOR_INSTANCE)
        return check_sagemaker_setup(self.session, spec.role, spec.s3_root, spec.image,
                                     str(spec.instance_type))

    def orchestrator_image(self, setup: CheckedSetup, override: str | None) -> str:
        image = override or orchestrator_image_for(setup.image_uri)
        check_image(self.session, setup.region, image)
        return image

    def existing_jobs(self, tag: str) -> dict[str, str]:
        from stbench.launch.status import SageMakerJobs

        return SageMakerJobs(self.session, tag).job_statuses()

    def create(self, request: dict[str, Any]) -> None:
        self.session.client("sagemaker").create_training_job(**request)

    def publish_code(self, package: CodePackage, study_root: str) -> str:
        return publish_code(package, study_root, lambda: self.session.client("s3"))


def plan_launch(spec: ExperimentSpec, target: LaunchTarget,
                orchestrator_image: str | None = None, force: bool = False) -> list[PlannedJob]:
    """All checks, then one planned job per (method, seed); creates nothing.

    The orchestrators' trials are SageMaker jobs: `plan_run` checks them as `stbench run
    --backend sagemaker` would (a cost budget the orchestrators could not keep, the trials'
    inputs and requests fail here, not in every job), and packs a user benchmark's folder once
    for all of them."""
    run = plan_run(replace(spec, backend=SAGEMAKER))
    methods = shipped_methods(run.spec, orchestrator_image)
    spec, benchmark, code = run.spec, run.benchmark, run.files.code
    if not spec.experiment_tag:
        raise UserError("remote launch needs --experiment_tag: it names the jobs and results")
    resolved = spec.resolved(benchmark)
    check_hyperparameters(resolved.to_hyperparameters(), "pass fewer or shorter benchmark "
                          "arguments (they travel as one hyperparameter, extra_args)")
    setup = target.check(resolved)
    image = target.orchestrator_image(setup, orchestrator_image)
    existing = target.existing_jobs(spec.experiment_tag)
    planned = []
    for variant in spec.variants():
        method = variant.label  # each variant its own jobs, folders and name
        for seed in spec.seeds:
            one = replace(resolved, method=(variant.method,), method_args=(variant,),
                          num_seeds=1, start_seed=seed, region=setup.region, resume=False)
            base = experiment_base(spec.experiment_tag, benchmark.name, method, seed)
            runs = sorted(n for n in existing if n.startswith(f"{base}-o"))
            busy = [n for n in runs if existing[n] in SKIP_STATUSES]
            name = orchestrator_job_name(base, len(runs))
            skip = ""
            if busy and not force:
                skip = f"{busy[-1]} is {existing[busy[-1]]}; pass --force to launch again"
            request = _request(one, setup, image, name, benchmark.name, method, seed, code,
                               methods)
            planned.append(PlannedJob(name, one, request, skip, code,
                                      setup.study_uri(spec.experiment_tag), methods))
    return planned


def shipped_methods(spec: ExperimentSpec, orchestrator_image: str | None
                    ) -> CodePackage | None:
    """The installed packages of the spec's methods, packed for the orchestrator jobs; an
    --orchestrator_image may hold them already, so a package that cannot travel is then left
    to it."""
    try:
        return pack_method_packages(spec)
    except UserError:
        if orchestrator_image:
            return None
        raise


def check_study(study: Study, planned: list[PlannedJob],
                session: boto3.session.Session, write_record: bool = True) -> None:
    """Study-wide checks, then the study's record, before the first job: the user's instance
    cap, the account's SageMaker quotas for what is launched now, and that the tag is not
    taken by a different study (recorded at `<tag>/study.json`, unless `write_record` is
    off: a dry run only reads)."""
    to_launch = [job for job in planned if not job.skip_reason]
    if study.max_instances is not None:
        need = sum(int(job.spec.n_workers or 1) + 1 for job in to_launch)
        if need > study.max_instances:
            raise UserError(
                f"the study could run {need} instances at once ({len(to_launch)} experiments x "
                f"(n_workers + 1 orchestrator)), over max_instances={study.max_instances}: lower "
                "--n_workers, launch fewer methods or seeds, or raise max_instances"
            )
    quota_checked = [job for job in to_launch
                     if job.spec.backend == SAGEMAKER and not job.spec.no_quota_check]
    if quota_checked:
        check_quotas(session, str(quota_checked[0].spec.region), study_demands(quota_checked))
    if not planned:
        return
    first = planned[0].spec
    bucket, prefix = split_s3_uri(str(first.s3_root))
    key = f"{prefix.strip('/')}/{first.experiment_tag}/study.json".lstrip("/")
    s3 = session.client("s3", region_name=first.region)
    record = json.dumps(study.definition(), sort_keys=True, indent=1)
    existing = read_s3_text(s3, bucket, key)
    if existing is not None and json.loads(existing) != json.loads(record):
        raise UserError(
            f"experiment tag '{first.experiment_tag}' is already used by a different study "
            f"(s3://{bucket}/{key}): choose a new --experiment_tag"
        )
    if existing is None and write_record:
        s3.put_object(Bucket=bucket, Key=key, Body=record.encode())


def study_demands(jobs: list[PlannedJob]) -> list[InstanceDemand]:
    """Instances per type while all these experiments run at once: each has an orchestrator
    job and n_workers trial jobs (and as many warm pools with --warm_pool)."""
    training: Counter[str] = Counter({ORCHESTRATOR_INSTANCE: len(jobs)})
    warm_pool: Counter[str] = Counter()
    for job in jobs:
        workers = int(job.spec.n_workers or 1)
        training[str(job.spec.instance_type)] += workers
        if job.spec.warm_pool:
            warm_pool[str(job.spec.instance_type)] += workers
    who = (f"this study ({len(jobs)} experiments at once, each an {ORCHESTRATOR_INSTANCE} "
           "orchestrator job and n_workers trials)")
    fewer = "launch fewer methods, seeds or benchmarks or lower --n_workers"
    return [InstanceDemand(kind, training[kind], warm_pool[kind], who, fewer)
            for kind in sorted(training)]


def launch_estimate(planned: list[PlannedJob], table: PriceTable) -> CostEstimate:
    """The bound on what the jobs launched now may cost (skipped ones run or ran already).

    An orchestrator job is counted for its MaxRuntimeInSeconds: with a RetryStrategy that
    limits all its attempts together (CreateTrainingJob's StoppingCondition), and its trial
    jobs live no longer than it, as it stops them at the budget's end."""
    return estimate([experiment_instances(
        job.spec, KEEP_ALIVE_SECONDS, ORCHESTRATOR_INSTANCE,
        float(job.request["StoppingCondition"]["MaxRuntimeInSeconds"]))
        for job in planned if not job.skip_reason], table)


def plan_lines(planned: list[PlannedJob]) -> list[str]:
    """What a launch would create, one line per experiment, for `--dry_run`."""
    lines = []
    for job in planned:
        spec = job.spec
        if job.skip_reason:
            lines.append(f"  skip {job.name}: {job.skip_reason}")
            continue
        runtime = float(job.request["StoppingCondition"]["MaxRuntimeInSeconds"])
        match = JOB_NAME.match(job.name)
        trials = trial_job_prefix(match["base"] if match else job.name)
        pools = ", with warm pools" if spec.warm_pool else ""
        lines.append(
            f"  {job.name}: {spec.benchmark} {spec.variants()[0].label} seed {spec.start_seed}: "
            f"orchestrator on {ORCHESTRATOR_INSTANCE} for at most {duration(runtime)}; trial "
            f"jobs {trials}… on {spec.instance_type}, {spec.n_workers} at once for "
            f"{duration(float(spec.max_wallclock_time or 0))}{pools}")
    return lines


def quota_lines(session: boto3.session.Session, region: str, demands: list[InstanceDemand],
                checked: bool = True) -> list[str]:
    """Each SageMaker quota the run needs at once, and what the account allows where
    Service Quotas says so (read-only calls, as the check makes)."""
    names = {name for demand in demands for name, _ in demand.quotas()}
    allowed: dict[str, float] = {}
    unread = f"not checked ({SKIP_FLAG})"
    if checked and names:
        unread = "not listed by Service Quotas"
        try:
            client = session.client("service-quotas", region_name=region, config=QUOTA_CLIENT)
            allowed = {name: q.value for name, q in read_quotas(client, names).items()}
        except (ClientError, BotoCoreError) as err:
            unread = "Service Quotas did not answer: " + (
                error_code(err) if isinstance(err, ClientError) else type(err).__name__)
    return [f"  '{name}': {needed} ("
            + (f"the account allows {allowed[name]:g}" if name in allowed else unread) + ")"
            for demand in demands for name, needed in demand.quotas()]


def launch(planned: list[PlannedJob], target: LaunchTarget,
           capacity_wait_seconds: float = 60.0, note: Any = print,
           on_launched: Callable[[str], None] = lambda name: None) -> list[str]:
    """Create the planned jobs, each name given to `on_launched` once it is created;
    ResourceLimitExceeded waits for capacity and tries again, for at most the spec's
    `max_capacity_wait` per job: then one line says why, and how many jobs were launched
    already (they keep running). `note` gets what is not a launched job's name."""
    created = []
    published: set[str] = set()
    for job in planned:
        if job.skip_reason:
            note(f"skip {job.name}: {job.skip_reason}")
            continue
        if job.code is not None and job.code.digest not in published:
            note(f"benchmark folder {job.code.folder}: "
                 f"{target.publish_code(job.code, job.study_root)}")
            published.add(job.code.digest)
        if job.methods is not None and job.methods.digest not in published:
            note(f"method packages: {target.publish_code(job.methods, job.study_root)}")
            published.add(job.methods.digest)
        deadline = time.monotonic() + job.spec.max_capacity_wait
        while True:
            try:
                target.create(job.request)
                break
            except ClientError as err:
                if error_code(err) != "ResourceLimitExceeded":
                    raise
                left = deadline - time.monotonic()
                if left <= 0:
                    raise UserError(
                        f"no capacity to launch {job.name} in {job.spec.max_capacity_wait:g} s "
                        f"of retrying ({error_message(err)}); {len(created)} jobs launched "
                        "before it keep running: raise that quota in Service Quotas, or "
                        "launch fewer experiments at once, or wait longer with "
                        "--max_capacity_wait") from None
                note(f"{job.name}: no capacity ({error_message(err)}); "
                     f"retrying in {min(capacity_wait_seconds, left):.3g} s")
                time.sleep(min(capacity_wait_seconds, left))
        created.append(job.name)
        on_launched(job.name)
    return created


def _request(spec: ExperimentSpec, setup: CheckedSetup, image: str, name: str,
             benchmark: str, method: str, seed: int,
             code: CodePackage | None, methods: CodePackage | None) -> dict[str, Any]:
    """The orchestrator's job; a user benchmark's folder reaches it as the `code` channel,
    which its remote mode unpacks before it loads the benchmark, and installed method packages
    as the `methods` channel (method_packages.py)."""
    where = setup.experiment_uri(spec.experiment_tag, benchmark, method, seed)
    study = setup.study_uri(spec.experiment_tag)
    inputs = {name: code_uri(study, package) for name, package in
              ((CODE_CHANNEL, code), (METHODS_CHANNEL, methods)) if package is not None}
    template = JobTemplate(
        image=image, benchmark=benchmark, instance_type=ORCHESTRATOR_INSTANCE,
        checkpoint_root=f"{where}/orchestrator/", output_root=f"{where}/orchestrator-output/",
        role_arn=setup.role_arn,
        max_runtime_seconds=int(float(spec.max_wallclock_time or 0)) + LAUNCH_MARGIN_SECONDS,
        tags={"stbench:experiment-tag": spec.experiment_tag, "stbench:benchmark": benchmark,
              "stbench:method": tag_value(method), "stbench:seed": str(seed)},
        inputs=inputs, environment={TAG_ENV: spec.experiment_tag},
    )
    # the orchestrator keeps its results in its checkpoints: uploaded while it runs, restored
    # when a restarted job begins
    request = training_job_request(template, name, spec.to_hyperparameters(),
                                   template.checkpoint_root, {"stbench:role": "orchestrator"})
    # a failed instance (an InternalServerError) restarts the job, which then resumes from
    # its checkpoints and takes over the trial jobs it left
    request["RetryStrategy"] = {"MaximumRetryAttempts": ORCHESTRATOR_RETRIES}
    return request
