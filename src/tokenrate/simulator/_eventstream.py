"""AWS event-stream framing (``application/vnd.amazon.eventstream``), the binary wire of Bedrock's stream operations.

One message, all integers big-endian (botocore ``eventstream.EventStreamBuffer`` reads it and checks both CRCs)::

    total_length u32 | headers_length u32 | prelude_crc u32 (crc32 of the first 8 bytes)
    headers | payload | message_crc u32 (crc32 of everything before it)

A header is ``name_length u8, name, value_type u8, value``; Bedrock sends only strings (type 7: ``length u16,
utf-8``). ``:message-type`` is ``event`` (botocore parses it as the ``:event-type`` member of the stream union) or
``exception`` (``:exception-type`` names the error member; botocore raises ``EventStreamError`` while iterating).
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Mapping
from typing import Any

CONTENT_TYPE = "application/vnd.amazon.eventstream"
STRING_HEADER = 7
PRELUDE_LENGTH = 12
CRC_LENGTH = 4


def _string_header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return bytes([len(raw_name)]) + raw_name + bytes([STRING_HEADER]) + struct.pack("!H", len(raw_value)) + raw_value


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One framed message: prelude, its CRC, string headers, payload and the message CRC."""
    encoded_headers = b"".join(_string_header(name, value) for name, value in headers.items())
    total = PRELUDE_LENGTH + len(encoded_headers) + len(payload) + CRC_LENGTH
    prelude = struct.pack("!II", total, len(encoded_headers))
    message = prelude + struct.pack("!I", zlib.crc32(prelude)) + encoded_headers + payload
    return message + struct.pack("!I", zlib.crc32(message))


def event(event_type: str, payload: Any) -> bytes:
    """An ``event`` message whose JSON payload botocore parses as the union member ``event_type``."""
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, json.dumps(payload, separators=(",", ":")).encode())


def exception(exception_type: str, message: str) -> bytes:
    """An ``exception`` message (a modeled stream error such as ``throttlingException``) with its JSON body."""
    headers = {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    return encode_message(headers, json.dumps({"message": message}).encode())
