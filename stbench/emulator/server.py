"""The endpoint: moto's server for S3, CloudWatch Logs, ECR, IAM, STS (and the rest of
moto), with SageMaker training jobs and SageMaker's Service Quotas answered in front of it.

One URL serves every service, as boto3 sees it through `AWS_ENDPOINT_URL`: the JSON
services are told apart by `X-Amz-Target`, the others are moto's to route. A fraction of the
SageMaker and CloudWatch Logs calls (`throttle_fraction`) is answered with
ThrottlingException, and a fraction of CreateTrainingJob calls (`capacity_refusal_fraction`)
with ResourceLimitExceeded, each drawn from a seeded generator of its own.
"""

from __future__ import annotations

import io
import logging
import random
import secrets
import shutil
import threading
import uuid
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from stbench.emulator import quotas
from stbench.emulator.capacity import refused_for_others
from stbench.emulator.config import TEST_CREDENTIALS, EmulatorConfig
from stbench.emulator.containers import DockerJobs
from stbench.emulator.ecr import EcrApp
from stbench.emulator.iam_gate import Authorizer, IamGate
from stbench.emulator.iam_simulator import PolicySimulator
from stbench.emulator.logs import LogDelivery
from stbench.emulator.protocol import (
    AwsError,
    StartResponse,
    read_body,
    region_of,
    respond,
    respond_error,
    target_of,
)
from stbench.emulator.registry import Registry
from stbench.emulator.service import ACTIONS, TrainingService
from stbench.emulator.validation import check_request
from stbench.model.seeding import SEED_BOUND, spawn_seeds

log = logging.getLogger(__name__)
SAGEMAKER, LOGS, SERVICE_QUOTAS = "SageMaker", "Logs_20140328", "ServiceQuotasV20190624"
THROTTLED = (SAGEMAKER, LOGS)


class EndpointApp:
    """WSGI: our actions first, everything else to moto's dispatcher."""

    def __init__(self, moto_app: Any, service: TrainingService, seed: int,
                 ecr: EcrApp | None = None, simulator: PolicySimulator | None = None):
        self.moto_app = moto_app
        self.ecr = ecr  # ECR with a real registry behind it (ecr.py); None: moto's alone
        self.simulator = simulator  # IAM's SimulatePrincipalPolicy, which moto lacks
        self.service = service
        self.config = service.config
        throttle_seed, refusal_seed = spawn_seeds(seed, 2)  # the first as before refusals
        self._random = random.Random(throttle_seed)
        self._refusals = random.Random(refusal_seed)
        self._random_lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        prefix, action = target_of(environ)
        throttled = prefix in THROTTLED and self._throttled()
        ours = (prefix == SAGEMAKER and action in ACTIONS) or prefix == SERVICE_QUOTAS
        if not (ours or throttled):
            if self.ecr is not None and self.ecr.routes(environ):
                return self.ecr(environ, start_response)
            if self.simulator is not None and self.simulator.routes(environ):
                return self.simulator(environ, start_response)
            return self.moto_app(environ, start_response)
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(raw)  # moto may still need it
        if throttled:
            return respond_error(start_response, AwsError("ThrottlingException", "Rate exceeded"))
        region = region_of(environ, self.config.region)
        try:
            body = read_body(environ)
            if prefix == SERVICE_QUOTAS:
                if not quotas.is_ours(action, body):
                    environ["wsgi.input"] = io.BytesIO(raw)
                    return self.moto_app(environ, start_response)
                answer = quotas.handle(self.config, action, region, body)
            else:
                if action == "CreateTrainingJob" and self._draw(
                        self._refusals, self.config.capacity_refusal_fraction):
                    check_request("sagemaker", action, body)  # a bad request is told so first
                    raise refused_for_others(self.config, body)
                answer = self.service.handle(action, region, body)
        except AwsError as err:
            return respond_error(start_response, err)
        except Exception as err:  # noqa: BLE001 - a bug of ours, as AWS reports its own
            log.exception("%s.%s", prefix, action)
            return respond_error(start_response, AwsError(
                "InternalFailure", f"{type(err).__name__}: {err}", 500))
        return respond(start_response, 200, answer)

    def _throttled(self) -> bool:
        return self._draw(self._random, self.config.throttle_fraction)

    def _draw(self, generator: random.Random, fraction: float) -> bool:
        if fraction <= 0:
            return False
        with self._random_lock:
            return generator.random() < fraction


class Emulator:
    """A local SageMaker endpoint on 127.0.0.1, served from threads of this process.

    `with Emulator(EmulatorConfig(...)) as emu:` starts it (a free port unless the config
    names one); `emu.endpoint_url` and `emu.environment()` are what clients need; leaving
    the block stops every job and removes the endpoint's containers and volumes. moto keeps
    its state per process: two endpoints in one process share S3, Logs, ECR's repositories
    and IAM; each has its own ECR registry (registry.py), stopped and emptied on close.
    """

    def __init__(self, config: EmulatorConfig | None = None, docker_client: Any = None):
        self.config = config or EmulatorConfig()
        self.seed = (self.config.seed if self.config.seed is not None
                     else secrets.randbelow(SEED_BOUND))
        self.id = f"stbench-emu-{uuid.uuid4().hex[:8]}"
        self._docker_client = docker_client
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.service: TrainingService | None = None
        self.registry: Registry | None = None  # ECR's images (registry.py)

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return f"http://{self.config.host}:{self._server.server_port}"

    @property
    def ecr_registry(self) -> str:
        """`127.0.0.1:<port>`: the endpoint's ECR registry, as repository URIs name it."""
        if self.registry is None:
            raise RuntimeError("the emulator is not started")
        return self.registry.address

    def environment(self) -> dict[str, str]:
        """What boto3 (and the AWS CLI) need to use this endpoint for every service."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url, **TEST_CREDENTIALS,
                "AWS_DEFAULT_REGION": self.config.region}

    def start(self, in_thread: bool = True) -> Emulator:
        """Bind the port and start serving (in a thread unless `in_thread` is False: then
        call `serve_forever`)."""
        from moto.moto_server import werkzeug_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        docker = DockerJobs(self.id, self._docker_client)
        handler = getattr(werkzeug_app, "MotoRequestHandler", None)
        options = {"request_handler": handler} if handler else {}
        self.registry = Registry(self.config.host).start()
        docker.registry_auth[self.registry.address] = self.registry.auth
        try:
            self._server = make_server(self.config.host, self.config.port, None, threaded=True,
                                       **options)
        except OSError:
            self.registry.close()
            self.registry = None
            raise
        self.service = TrainingService(self.config, docker, LogDelivery(
            self.config.log_delay_seconds), self.endpoint_url)
        moto_app = werkzeug_app.DomainDispatcherApplication(werkzeug_app.create_backend_app)
        authorizer = Authorizer()
        self._server.app = EndpointApp(moto_app, self.service, self.seed, EcrApp(
            moto_app, self.registry, self.config.region), PolicySimulator(authorizer))
        if self.config.enforce_iam:
            self.service.iam = authorizer
            self._server.app = IamGate(self._server.app, self.service.iam, self.config.region)
        if in_thread:
            self._thread = threading.Thread(target=self._server.serve_forever,
                                            name="emulator-http", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def wait(self) -> None:
        """Block while the serving thread runs (Ctrl-C ends the wait in the main thread)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=1.0)

    def fail_instance(self, job_name: str, region: str | None = None) -> None:
        """Test hook (no AWS action, no HTTP route): the running job's instance fails now.
        Its container is killed without a grace period and nothing more is uploaded from it;
        SageMaker calls this an InternalServerError. With `RetryStrategy` retries left the
        job starts again (SecondaryStatus Starting) on a new instance with /opt/ml/checkpoints
        restored from CheckpointConfig.S3Uri, else it fails. How tests and benches kill a
        launched orchestrator the way managed spot or a host failure would."""
        if self.service is None:
            raise RuntimeError("the emulator is not started")
        self.service.fail_instance(region or self.config.region, job_name)

    def close(self) -> tuple[int, int]:
        """Stop serving and every job; remove the containers and volumes. (removed, left)"""
        if self.service is None:
            return 0, 0
        self.service.close()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()
        removed = self.service.docker.remove_all()
        shutil.rmtree(self.service.work_dir, ignore_errors=True)
        if self.registry is not None:
            self.registry.close(self.service.docker.client)
            self.registry = None
        self.service = None
        return removed

    def __enter__(self) -> Emulator:
        return self.start() if self.service is None else self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
