"""Residents' photos in an S3-compatible bucket (Amazon S3, MinIO, Ceph RGW, Yandex Object
Storage…): a :class:`~qala.components.requests311.photo_files.PhotoStore` chosen by
``QALA_MEDIA_S3_URL`` and ``QALA_MEDIA_S3_BUCKET`` (see :mod:`qala.settings`).

The bucket is storage only: photos are still served by Qala's own route, with its headers and
its check of who may see a hidden photo, so the bucket stays private. Each object is written
whole (S3 has no half-written objects) with the photo's verified Content-Type. Whatever the
storage answers when it fails (no bucket, wrong keys, endpoint down) becomes an
:class:`~qala.core.errors.UnavailableError` naming the operation, the bucket and the S3 error
code, never the keys. boto3 is imported on first use, so commands that never touch photos do
not pay for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from qala.components.requests311.photo_files import CONTENT_TYPES, NAME_PATTERN
from qala.core.errors import NotFoundError, UnavailableError
from qala.core.messages import msg

log = logging.getLogger("qala.requests311.photos")

_MISSING = {"NoSuchKey", "404", "NotFound"}
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30


def storage_unavailable(operation: str, bucket: str, code: str) -> UnavailableError:
    """The error a failed storage call becomes: English for the API and the log, a catalogue
    message for residents."""
    return UnavailableError(
        f"the photo storage is unavailable ({operation} in bucket {bucket!r}: {code}); "
        "nothing was stored, try again later"
    ).with_message(msg("problem.photo_storage_unavailable"))


def _content_type(name: str) -> str:
    return CONTENT_TYPES[name.rsplit(".", 1)[-1]]


class S3PhotoStore:
    """Photos as objects ``{prefix}requests311/{name}`` in ``bucket`` at ``endpoint``."""

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str = "us-east-1",
        prefix: str = "",
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.bucket = bucket
        self.region = region
        self.prefix = prefix
        self._access_key = access_key
        self._secret_key = secret_key
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the keys
        return f"S3PhotoStore({self.endpoint!r}, bucket={self.bucket!r}, prefix={self.prefix!r})"

    def _key(self, name: str) -> str:
        if not NAME_PATTERN.match(name):
            raise NotFoundError("no such photo")
        return f"{self.prefix}requests311/{name}"

    def _s3(self) -> Any:
        """The boto3 client, made once (boto3's clients are safe to share between threads)."""
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                host = urlsplit(self.endpoint).hostname or ""
                aws = host == "amazonaws.com" or host.endswith(".amazonaws.com")
                config = Config(
                    connect_timeout=CONNECT_TIMEOUT_S,
                    read_timeout=READ_TIMEOUT_S,
                    retries={"max_attempts": 2, "mode": "standard"},
                    signature_version="s3v4",
                    # MinIO and most self-hosted servers serve buckets by path, AWS by host.
                    s3={"addressing_style": "virtual" if aws else "path"},
                )
                self._client = boto3.session.Session().client(
                    "s3",
                    endpoint_url=self.endpoint,
                    region_name=self.region,
                    aws_access_key_id=self._access_key,
                    aws_secret_access_key=self._secret_key,
                    config=config,
                )
            return self._client

    def _call(self, operation: str, **arguments: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._s3(), operation)(Bucket=self.bucket, **arguments)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code") or "error")
            if operation == "get_object" and code in _MISSING:
                raise NotFoundError("no such photo") from None
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            log.warning(
                "photo storage %s refused %s in bucket %r: %s (HTTP %s)",
                self.endpoint,
                operation,
                self.bucket,
                code,
                status,
            )
            raise storage_unavailable(operation, self.bucket, code) from None
        except BotoCoreError as exc:  # unreachable endpoint, timeout, no credentials…
            kind = type(exc).__name__
            log.warning(
                "photo storage %s failed %s in bucket %r: %s",
                self.endpoint,
                operation,
                self.bucket,
                kind,
            )
            raise storage_unavailable(operation, self.bucket, kind) from None

    def put(self, name: str, data: bytes) -> None:
        key = self._key(name)  # checks the name first
        self._call(
            "put_object",
            Key=key,
            Body=data,
            ContentType=_content_type(name),
            ContentDisposition="inline",
            CacheControl="private, no-store",
        )

    def get(self, name: str) -> bytes:
        from botocore.exceptions import BotoCoreError

        body = self._call("get_object", Key=self._key(name))["Body"]
        try:
            data: bytes = body.read()
        except (BotoCoreError, OSError) as exc:  # the connection dropped mid-photo
            log.warning("photo storage %s failed reading %s: %s", self.endpoint, name, exc)
            raise storage_unavailable("get_object", self.bucket, type(exc).__name__) from None
        finally:
            body.close()
        return data

    def delete(self, name: str) -> None:
        self._call("delete_object", Key=self._key(name))

    def listing(self) -> Iterator[tuple[str, datetime]]:
        folder = f"{self.prefix}requests311/"
        token: dict[str, str] = {}
        while True:
            page = self._call("list_objects_v2", Prefix=folder, **token)
            for item in page.get("Contents", []):
                name = str(item["Key"])[len(folder) :]
                if NAME_PATTERN.match(name):
                    yield name, item["LastModified"]
            if not page.get("IsTruncated"):
                return
            token = {"ContinuationToken": page["NextContinuationToken"]}
