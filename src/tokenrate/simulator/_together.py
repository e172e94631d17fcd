"""Together's wire protocol: OpenAI's chat and text completions under ``/v1``, Together's way.

Shapes follow together 3.1 (``types/chat/chat_completion*.py``, ``types/completion*.py``): ``usage`` has
``prompt_tokens``, ``completion_tokens`` and ``total_tokens`` only; a stream's chunks all say ``"usage": null``
except the last (the one with ``finish_reason``), which carries the whole usage without
``stream_options.include_usage`` being asked; a whole chat answer carries ``prompt`` (the echoed prompt, empty).
Rate-limit headers (Together's docs): ``x-ratelimit-limit`` / ``-remaining`` / ``-reset`` for requests (reset in
seconds) and ``x-tokenlimit-limit`` / ``-remaining`` for tokens. An overloaded model answers 503.

The simulator serves it under ``/together/v1``: a together 3.x client's base URL is ``<simulator>/together``
(its default is ``https://api.together.ai``, its paths ``/v1/...``), a 2.x client's ``<simulator>/together/v1``
(its default ends in ``/v1``, its paths do not start with it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tokenrate.simulator import _openai
from tokenrate.simulator._model import UsagePlan
from tokenrate.simulator._ratelimit import Window
from tokenrate.simulator._wire import Call, Reply, drop_none

PROTOCOL = "together"
PATH_PREFIX = "/together"
route = _openai.mounted_route(PATH_PREFIX)

SENDS_RETRY_AFTER = True
is_stream = _openai.is_stream
include_usage = _openai.include_usage
max_tokens = _openai.max_tokens
tool_results = _openai.tool_results
error = _openai.error
stream_error_event = _openai.stream_error_event


def usage(plan: UsagePlan) -> dict[str, Any] | None:
    """Together reports totals only: no cached or reasoning details."""
    totals = {"prompt_tokens": plan.input, "completion_tokens": plan.output, "total_tokens": plan.total}
    return drop_none(totals) or None


def _echoed_prompt(call: Call) -> dict[str, Any]:
    return {"prompt": []} if call.endpoint == "chat.completions" else {}


FLAVOUR = _openai.Flavour(
    usage_on_final_chunk=True, null_usage_on_chunks=True, usage=usage, answer_fields=_echoed_prompt
)


def success(call: Call, *, with_usage_in_stream: bool) -> Reply:
    return _openai.success(call, with_usage_in_stream=with_usage_in_stream, flavour=FLAVOUR)


def limit_headers(windows: Mapping[str, Window], request_id: str) -> dict[str, str]:
    headers = {"x-request-id": f"req_{request_id}"}
    requests = windows.get("requests")
    if requests is not None:
        headers["x-ratelimit-limit"] = str(requests.limit)
        headers["x-ratelimit-remaining"] = str(requests.remaining)
        headers["x-ratelimit-reset"] = json.dumps(round(requests.reset_s, 3))
    tokens = windows.get("tokens")
    if tokens is not None:
        headers["x-tokenlimit-limit"] = str(tokens.limit)
        headers["x-tokenlimit-remaining"] = str(tokens.remaining)
    return headers
