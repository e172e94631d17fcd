"""Real boto3 ``bedrock-runtime`` clients pointed at the simulated provider, isolated from the machine's AWS set-up.

Fake keys sign every request (SigV4 is client-side; the simulator accepts any signature). The environment is
scrubbed of what would change botocore's behaviour: a bearer token (it refuses plain http), profiles, config
files, and the retry settings the tests choose explicitly.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config

from tokenrate.simulator import UsagePlan

REGION = "us-east-1"
CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
LLAMA = "meta.llama3-8b-instruct-v1:0"
PROFILE_ARN = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0"
HI = [{"role": "user", "content": [{"text": "hi"}]}]
CACHED_PLAN = UsagePlan(input=120, output=30, cache_read=20, cache_write=10)
"""A usage with both cache parts (Bedrock reports no reasoning split)."""

_AWS_VARIABLES = (
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_RETRY_MODE",
    "AWS_MAX_ATTEMPTS",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
)


@pytest.fixture(autouse=True)
def isolated_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AWS configuration from the machine reaches botocore during a test."""
    for name in _AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def bedrock_client(endpoint_url: str, *, mode: str = "standard", total_max_attempts: int | None = None) -> Any:
    """A ``bedrock-runtime`` client on the simulator, with this retry mode (and total attempts, retries included)."""
    retries: dict[str, Any] = {"mode": mode}
    if total_max_attempts is not None:
        retries["total_max_attempts"] = total_max_attempts
    session = boto3.Session(
        aws_access_key_id="AKIDSIMULATED",
        aws_secret_access_key="simulated",
        region_name=REGION,
        botocore_session=_botocore_session(),
    )
    return session.client("bedrock-runtime", endpoint_url=endpoint_url, config=Config(retries=retries))


@functools.cache
def _botocore_session() -> Any:
    """One botocore session for every test client: it loads the service model and endpoint rules once."""
    return botocore.session.get_session()


def anthropic_body(max_tokens: int = 100) -> str:
    """An InvokeModel body in Anthropic's Messages format, as Bedrock takes it."""
    return json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": "hi"}],
        }
    )


def llama_body() -> str:
    return json.dumps({"prompt": "hi", "max_gen_len": 100})


def chunk_payloads(stream: Any) -> list[dict[str, Any]]:
    """The model's own JSON of every InvokeModelWithResponseStream chunk (botocore has decoded the base64)."""
    return [json.loads(event["chunk"]["bytes"]) for event in stream]
