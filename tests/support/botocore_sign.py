#!/usr/bin/env python3
"""Signs requests with botocore, so tests can compare skyvol's SigV4 signer with it.

Reads one JSON document on stdin: a list of requests, each
  {"kind": "header" | "presign",
   "method": "GET", "url": "https://host/path?query",
   "headers": [["Host", "..."], ...],          # header signing only; repeats allowed
   "payload_hash": "<hex>" | "UNSIGNED-PAYLOAD",  # header signing only
   "expires": 3600,                             # presigning only
   "time": "20130524T000000Z",
   "access_key": "...", "secret_key": "...", "token": "" | "...",
   "region": "us-east-1", "service": "s3"}
and prints a JSON list with, for each request, its Authorization header ("header") or its
presigned URL ("presign"). Works with botocore 1.29 (Debian 12) and later releases.
"""

import contextlib
import datetime
import json
import sys

import botocore.auth
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


class _FixedPayloadS3SigV4Auth(S3SigV4Auth):
    """S3SigV4Auth that signs the given payload hash instead of hashing a body."""

    def __init__(self, credentials, service_name, region_name, payload_hash):
        super().__init__(credentials, service_name, region_name)
        self._payload_hash = payload_hash

    def payload(self, request):
        return self._payload_hash


@contextlib.contextmanager
def _signing_time(when):
    """Makes botocore sign at `when` (a naive UTC datetime)."""
    saved = {}
    if hasattr(botocore.auth, "get_current_datetime"):
        # Newer botocore: add_auth calls botocore.auth.get_current_datetime().
        saved["get_current_datetime"] = botocore.auth.get_current_datetime
        botocore.auth.get_current_datetime = lambda *args, **kwargs: when
    else:
        # Older botocore: add_auth calls datetime.datetime.utcnow() through botocore.auth.datetime.
        class _FixedDatetime(datetime.datetime):
            @classmethod
            def utcnow(cls):
                return when

        real = datetime

        class _DatetimeModule:
            datetime = _FixedDatetime
            timezone = real.timezone
            timedelta = real.timedelta

        saved["datetime"] = botocore.auth.datetime
        botocore.auth.datetime = _DatetimeModule
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(botocore.auth, name, value)


def _sign(item):
    credentials = Credentials(item["access_key"], item["secret_key"], item.get("token") or None)
    when = datetime.datetime.strptime(item["time"], "%Y%m%dT%H%M%SZ")
    service = item.get("service", "s3")
    request = AWSRequest(method=item["method"], url=item["url"])
    with _signing_time(when):
        if item["kind"] == "presign":
            signer = S3SigV4QueryAuth(credentials, service, item["region"], expires=item["expires"])
            signer.add_auth(request)
            return request.url
        for name, value in item["headers"]:
            request.headers[name] = value  # HTTPHeaders appends: repeated names stay repeated
        # S3SigV4Auth sets X-Amz-Content-SHA256 from payload(); set it here too so that nothing
        # botocore infers from the body, the URL scheme or checksum settings can change it.
        request.headers["X-Amz-Content-SHA256"] = item["payload_hash"]
        signer = _FixedPayloadS3SigV4Auth(credentials, service, item["region"],
                                          item["payload_hash"])
        signer.add_auth(request)
        return request.headers["Authorization"]


def main():
    items = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    json.dump([_sign(item) for item in items], sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
