"""ECR on the endpoint: moto's repositories, a real registry's images, one registry name.

moto keeps the repositories (CreateRepository, DescribeRepositories, policies, tags, and those
CloudFormation creates) but holds no images; `docker push` sends them to the endpoint's
registry (registry.py). So:

- GetAuthorizationToken is answered here: `proxyEndpoint` is `http://<registry host:port>`
  and the token decodes to `AWS:<the registry's password>`, which `docker login` accepts.
- DescribeImages, ListImages and BatchGetImage are answered here from what the registry
  stores (tags, manifest digests, compressed sizes, push times), for repositories that
  exist in moto, with ECR's errors when they do not.
- DeleteRepository also empties the repository in the registry (refused while it holds
  images, unless `force`, as ECR does).
- Every other ECR answer, and CloudFormation's, come from moto with its registry name
  `<account>.dkr.ecr.<region>.amazonaws.com` replaced by the registry's `host:port`, so a
  repositoryUri is what `docker push` and a training job can use.

The registry is one per endpoint, for every account and region moto serves: repositories
are told apart by name only, as the registry's paths carry no account or region.
"""

from __future__ import annotations

import base64
import io
import logging
import re
import shutil
import time
from collections.abc import Callable, Iterable
from typing import Any

from stbench.emulator.protocol import (
    ACCESS_KEY,
    CREDENTIAL_SCOPE,
    AwsError,
    StartResponse,
    read_body,
    region_of,
    respond,
    respond_error,
    target_of,
)
from stbench.emulator.registry import DIGEST, Manifest, Registry
from stbench.emulator.validation import check_request

log = logging.getLogger(__name__)
TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921"
ACTIONS = ("GetAuthorizationToken", "DescribeImages", "ListImages", "BatchGetImage",
           "DeleteRepository")
RENAMED_SERVICES = ("ecr", "cloudformation")  # moto answers naming its registry host
MOTO_REGISTRY = re.compile(rb"\b\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com\b")
TOKEN_SECONDS = 12 * 3600  # "Authorization tokens are valid for 12 hours"
PAGE = 100  # DescribeImages' and ListImages' page without maxResults
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _not_found(name: str, registry_id: str) -> AwsError:
    return AwsError("RepositoryNotFoundException", f"The repository with name '{name}' does "
                    f"not exist in the registry with id '{registry_id}'")


def _image_id_text(image_id: dict[str, str]) -> str:
    digest, tag = image_id.get("imageDigest") or "null", image_id.get("imageTag") or "null"
    return f"{{imageDigest:'{digest}', imageTag:'{tag}'}}"


class EcrApp:
    """WSGI for the ECR actions above and the renamed answers; the rest goes to moto."""

    def __init__(self, moto_app: WsgiApp, registry: Registry, default_region: str):
        self.moto_app = moto_app
        self.registry = registry
        self.default_region = default_region

    @property
    def host(self) -> str:
        """`127.0.0.1:<port>`: the registry's name in repository URIs."""
        return self.registry.address

    def routes(self, environ: dict[str, Any]) -> bool:
        """Whether this request is ours: an ECR action, or a CloudFormation one."""
        prefix, _ = target_of(environ)
        scope = CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        return prefix == TARGET_PREFIX or bool(scope and scope.group(2) in RENAMED_SERVICES)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        prefix, action = target_of(environ)
        if prefix != TARGET_PREFIX or action not in ACTIONS:
            return self._renamed(environ, start_response)
        region = region_of(environ, self.default_region)
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(raw)
        handlers = {"GetAuthorizationToken": self.get_authorization_token,
                    "DescribeImages": self.describe_images, "ListImages": self.list_images,
                    "BatchGetImage": self.batch_get_image}
        try:
            body = read_body(environ)
            environ["wsgi.input"] = io.BytesIO(raw)  # moto reads it again (DeleteRepository)
            check_request("ecr", action, body)
            account = self._account(environ)
            if action == "DeleteRepository":
                return self._delete_repository(environ, start_response, account, region, body)
            answer = handlers[action](account, region, body)
        except AwsError as err:
            return respond_error(start_response, err)
        except Exception as err:  # noqa: BLE001 - a bug of ours, as ECR reports its own
            log.exception("ecr.%s", action)
            return respond_error(start_response, AwsError(
                "ServerException", f"{type(err).__name__}: {err}", 500))
        return respond(start_response, 200, answer)

    # --- moto's answers, with the registry named as it is reached -------------------------

    def _renamed(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        return self._send(start_response, *self._call_moto(environ))

    def _send(self, start_response: StartResponse, status: str, headers: list[tuple[str, str]],
              body: bytes) -> Iterable[bytes]:
        body = MOTO_REGISTRY.sub(self.host.encode(), body)
        start_response(status, [(k, str(len(body)) if k.lower() == "content-length" else v)
                                for k, v in headers])
        return [body]

    def _call_moto(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        answer: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], *_: Any) -> Any:
            answer["status"], answer["headers"] = status, list(headers)
            return lambda data: None

        chunks = self.moto_app(environ, capture)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return answer["status"], answer["headers"], body

    # --- the actions answered here ---------------------------------------------------------

    def _account(self, environ: dict[str, Any]) -> str:
        """The account moto files this caller's repositories under."""
        from moto.iam.models import get_account_id_from

        match = ACCESS_KEY.search(environ.get("HTTP_AUTHORIZATION", ""))
        return get_account_id_from(match.group(1) if match else "")

    def _repository(self, account: str, region: str, body: dict[str, Any]) -> tuple[str, str]:
        """(name, registry id) of a repository moto holds, else RepositoryNotFoundException."""
        from moto.ecr.models import ecr_backends

        name, registry_id = body["repositoryName"], body.get("registryId") or account
        repository = ecr_backends[account][region].repositories.get(name)
        if repository is None or repository.registry_id != registry_id:
            raise _not_found(name, registry_id)
        return name, registry_id

    def get_authorization_token(self, account: str, region: str,
                               body: dict[str, Any]) -> dict[str, Any]:
        token = base64.b64encode(f"{self.registry.auth['username']}:"
                                 f"{self.registry.auth['password']}".encode()).decode()
        return {"authorizationData": [
            {"authorizationToken": token, "expiresAt": time.time() + TOKEN_SECONDS,
             "proxyEndpoint": f"http://{self.host}"}
            for _ in body.get("registryIds") or [account]]}

    def _images(self, name: str) -> list[tuple[Manifest, list[str]]]:
        """Every manifest with its tags, oldest push first."""
        tags: dict[str, list[str]] = {}
        for tag, digest in self.registry.tags(name).items():
            tags.setdefault(digest, []).append(tag)
        found = []
        for digest in self.registry.digests(name):
            manifest = self.registry.manifest(name, digest)
            if manifest is not None:
                found.append((manifest, tags.get(digest, [])))
        return found

    def _find(self, images: list[tuple[Manifest, list[str]]],
              image_id: dict[str, str]) -> tuple[tuple[Manifest, list[str]] | None, str]:
        """The image an ImageIdentifier names, else (None, ImageFailureCode)."""
        digest, tag = image_id.get("imageDigest"), image_id.get("imageTag")
        if not digest and not tag:
            return None, "MissingDigestAndTag"
        if digest and not DIGEST.match(digest):
            return None, "InvalidImageDigest"
        for image in images:
            manifest, tags = image
            if tag and tag in tags:
                if digest and digest != manifest.digest:
                    return None, "ImageTagDoesNotMatchDigest"
                return image, ""
            if not tag and digest == manifest.digest:
                return image, ""
        return None, "ImageNotFound"

    def _filtered(self, images: list[tuple[Manifest, list[str]]],
                  body: dict[str, Any]) -> list[tuple[Manifest, list[str]]]:
        status = (body.get("filter") or {}).get("tagStatus", "ANY")
        return [(m, t) for m, t in images
                if status == "ANY" or (status == "TAGGED") == bool(t)]

    def _page(self, items: list[Any], body: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """One page from nextToken (the opaque base64 of an offset) and maxResults."""
        start = 0
        if token := body.get("nextToken"):
            try:
                start = int(base64.urlsafe_b64decode(token.encode()).decode())
            except ValueError:
                raise AwsError("InvalidParameterException",
                               "Invalid parameter at 'nextToken': not a token of this "
                               "listing") from None
        end = start + int(body.get("maxResults") or PAGE)
        more = {"nextToken": base64.urlsafe_b64encode(str(end).encode()).decode()} \
            if end < len(items) else {}
        return items[start:end], more

    def describe_images(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        name, registry_id = self._repository(account, region, body)
        images = self._images(name)
        if ids := body.get("imageIds"):
            if body.get("nextToken") or body.get("maxResults"):
                raise AwsError("InvalidParameterException", "Invalid parameter: nextToken "
                               "and maxResults cannot be used with imageIds")
            chosen = []
            for image_id in ids:
                image, _ = self._find(images, image_id)
                if image is None:
                    raise AwsError("ImageNotFoundException", f"The image with imageId "
                                   f"{_image_id_text(image_id)} does not exist within the "
                                   f"repository with name '{name}' in the registry with id "
                                   f"'{registry_id}'")
                if image not in chosen:
                    chosen.append(image)
            page, more = chosen, {}
        else:
            page, more = self._page(self._filtered(images, body), body)
        return {"imageDetails": [self._detail(name, registry_id, m, t) for m, t in page], **more}

    @staticmethod
    def _detail(name: str, registry_id: str, manifest: Manifest,
                tags: list[str]) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "registryId": registry_id, "repositoryName": name, "imageDigest": manifest.digest,
            "imageSizeInBytes": manifest.size, "imagePushedAt": manifest.pushed_at,
            "imageManifestMediaType": manifest.media_type, "imageStatus": "ACTIVE"}
        if tags:
            detail["imageTags"] = sorted(tags)
        if manifest.artifact_media_type:
            detail["artifactMediaType"] = manifest.artifact_media_type
        return detail

    def list_images(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        name, _ = self._repository(account, region, body)
        ids: list[dict[str, str]] = []
        for manifest, tags in self._filtered(self._images(name), body):
            ids += [{"imageDigest": manifest.digest, "imageTag": tag} for tag in sorted(tags)]
            if not tags:
                ids.append({"imageDigest": manifest.digest})
        page, more = self._page(ids, body)
        return {"imageIds": page, **more}

    def batch_get_image(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        name, registry_id = self._repository(account, region, body)
        images, found, failures = self._images(name), [], []
        for image_id in body["imageIds"]:
            image, code = self._find(images, image_id)
            if image is None:
                failures.append({"imageId": image_id, "failureCode": code, "failureReason":
                                 "Requested image not found" if code == "ImageNotFound"
                                 else code})
                continue
            manifest, _ = image
            found.append({"registryId": registry_id, "repositoryName": name,
                          "imageId": {**image_id, "imageDigest": manifest.digest},
                          "imageManifest": manifest.body.decode(),
                          "imageManifestMediaType": manifest.media_type})
        return {"images": found, "failures": failures}

    def _delete_repository(self, environ: dict[str, Any], start_response: StartResponse,
                           account: str, region: str, body: dict[str, Any]) -> Iterable[bytes]:
        name, registry_id = self._repository(account, region, body)
        if self.registry.digests(name) and not body.get("force"):
            raise AwsError("RepositoryNotEmptyException", f"The repository with name '{name}' "
                           f"in registry with id '{registry_id}' cannot be deleted because it "
                           "still contains images")
        status, headers, answer = self._call_moto(environ)
        if status.startswith("200"):
            shutil.rmtree(self.registry.repository_folder(name), ignore_errors=True)
        return self._send(start_response, status, headers, answer)
