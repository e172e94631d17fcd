"""Who spent it: attributes (user, conversation, agent, feature, any key) carried by every call.

* `attributes` attaches them in code, as a ``with`` block or a decorator (sync and async);
* ``TOKENRATE_BAGGAGE_KEYS=user.id,tenant.id`` copies those OTel Baggage entries onto calls;
* `current_attributes` is what a call carries, read once when it starts (`tokenrate.recording.ActiveCall`);
* `metric_policy` decides which of them reach metrics (``TOKENRATE_METRIC_ATTRIBUTES``, capped per key by
  ``TOKENRATE_METRIC_ATTRIBUTE_LIMIT``).

A user id is personal data (semconv marks ``user.id`` so): pass a pseudonymous one (e.g. a keyed hash of the
account id) when telemetry leaves your control.
"""

from __future__ import annotations

from tokenrate._env import setting
from tokenrate.attribution.context import (
    AGENT_NAME,
    CONVERSATION_ID,
    EMPTY,
    FEATURE,
    MAX_ATTRIBUTES,
    MAX_VALUE_LEN,
    SHORTCUTS,
    USER_ID,
    Attributes,
    AttributeScope,
    attributes,
    baggage_keys,
    block_attributes,
    clean_value,
    current_attributes,
    set_baggage_keys,
)
from tokenrate.attribution.metric_policy import DEFAULT_LIMIT, OVERFLOW_VALUE, MetricAttributePolicy, PickedAttributes

__all__ = [
    "AGENT_NAME",
    "CONVERSATION_ID",
    "DEFAULT_LIMIT",
    "EMPTY",
    "ENV_BAGGAGE_KEYS",
    "ENV_METRIC_ATTRIBUTES",
    "ENV_METRIC_ATTRIBUTE_LIMIT",
    "FEATURE",
    "MAX_ATTRIBUTES",
    "MAX_VALUE_LEN",
    "OVERFLOW_VALUE",
    "SHORTCUTS",
    "USER_ID",
    "AttributeScope",
    "Attributes",
    "MetricAttributePolicy",
    "PickedAttributes",
    "attributes",
    "baggage_keys",
    "block_attributes",
    "clean_value",
    "configure",
    "configure_from_env",
    "current_attributes",
    "metric_policy",
]

ENV_BAGGAGE_KEYS = "TOKENRATE_BAGGAGE_KEYS"
ENV_METRIC_ATTRIBUTES = "TOKENRATE_METRIC_ATTRIBUTES"
ENV_METRIC_ATTRIBUTE_LIMIT = "TOKENRATE_METRIC_ATTRIBUTE_LIMIT"

_policy = MetricAttributePolicy()
_configured_in_code = False


def metric_policy() -> MetricAttributePolicy:
    """The process-wide allow-list of metric attributes (empty unless configured)."""
    return _policy


def configure(
    *,
    baggage_keys: tuple[str, ...] = (),
    metric_attributes: tuple[str, ...] = (),
    metric_attribute_limit: int = DEFAULT_LIMIT,
) -> None:
    """Set which Baggage entries calls copy, and which attribute keys metrics carry (a fresh guard).

    Called in code, it wins over the environment (which `tokenrate.instrument` reads the first time).
    """
    global _configured_in_code
    _configured_in_code = True
    _apply(baggage_keys, metric_attributes, metric_attribute_limit)


def _apply(baggage_keys: tuple[str, ...], metric_attributes: tuple[str, ...], limit: int) -> None:
    global _policy
    set_baggage_keys(baggage_keys)
    _policy = MetricAttributePolicy(metric_attributes, limit)


def configure_from_env(*, force: bool = False) -> None:
    """`configure` from ``TOKENRATE_BAGGAGE_KEYS``, ``TOKENRATE_METRIC_ATTRIBUTES`` and ``..._LIMIT``.

    Left alone when `configure` was called in code, unless ``force``.
    """
    global _configured_in_code
    if _configured_in_code and not force:
        return
    _configured_in_code = False
    _apply(setting(ENV_BAGGAGE_KEYS), setting(ENV_METRIC_ATTRIBUTES), setting(ENV_METRIC_ATTRIBUTE_LIMIT))
