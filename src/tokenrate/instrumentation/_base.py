"""The shared life cycle of tokenrate's instrumentors (one per SDK, each its own entry point).

`BaseInstrumentor` gives ``instrument()``/``uninstrument()``, the singleton and the
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` handling; this base adds what every tokenrate instrumentor does the
same way: check its SDK's version even when ``opentelemetry-instrument`` skipped the check, build the telemetry
sink from the providers it was given, set up the process-wide local features once, and apply or revert its
hooks one by one.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.dependencies import get_dependency_conflicts
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from tokenrate._safety import logger, report
from tokenrate.pipeline import Pipeline
from tokenrate.providers._patching import Hook, Patcher
from tokenrate.sdks import sdk_named
from tokenrate.telemetry.sink import TelemetrySink


class TokenrateInstrumentor(BaseInstrumentor):
    """Base for the per-SDK instrumentors. Subclasses set `sdk` and implement `hooks`."""

    sdk: str = ""
    """The SDK's name in `tokenrate.sdks` (where its supported versions are)."""

    instruments: tuple[str, ...] = ()
    """Requirement strings of the SDK this instrumentor supports, e.g. ``("openai >= 3.0, < 4",)``."""

    _patcher: Patcher | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.sdk:
            cls.instruments = (sdk_named(cls.sdk).requirement,)

    def instrumentation_dependencies(self) -> Collection[str]:
        return self.instruments

    def hooks(self, pipeline: Pipeline) -> list[Hook]:
        raise NotImplementedError

    def _instrument(self, **kwargs: Any) -> None:
        # opentelemetry-instrument passes skip_dep_check=True after checking only that *some* supported SDK is
        # installed (the `instruments-any` extra); check ours, and stay a no-op when it is absent or unsupported.
        conflict = get_dependency_conflicts(list(self.instruments))
        if conflict is not None:
            logger.debug("tokenrate: %s not enabled: %s", type(self).__name__, conflict)
            return
        try:
            from tokenrate._setup import configure_local

            configure_local()
        except Exception as exc:
            report("local set-up (view, cost, ledger)", exc)
        sink = TelemetrySink.create(kwargs.get("tracer_provider"), kwargs.get("meter_provider"))
        patcher = Patcher(self.hooks(Pipeline(sink)))
        patcher.apply()
        self._patcher = patcher

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._patcher is not None:
            self._patcher.revert()
            self._patcher = None

    @property
    def active(self) -> bool:
        """Hooks are in place (instrumented, and the SDK was present and supported)."""
        return self._patcher is not None and bool(self._patcher.applied)

    @property
    def skipped_hooks(self) -> dict[str, str]:
        """Hook points that could not be applied on the installed SDK, with the reason."""
        return dict(self._patcher.skipped) if self._patcher is not None else {}
