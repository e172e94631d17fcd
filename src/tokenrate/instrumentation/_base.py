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
    _pipeline: Pipeline | None = None
    _providers: dict[str, Any] | None = None

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
        self._providers = {name: kwargs.get(name) for name in ("tracer_provider", "meter_provider")}
        pipeline = Pipeline(TelemetrySink.create(**self._providers))
        patcher = Patcher(self.hooks(pipeline))
        patcher.apply()
        self._patcher = patcher
        self._pipeline = pipeline

    def rebind(self, *, tracer_provider: Any = None, meter_provider: Any = None) -> bool:
        """Send telemetry to other providers from now on (those given; the others stay). Returns whether any changed.

        Calls already in flight finish on the providers they started with. The hooks stay as they are.
        """
        pipeline, providers = self._pipeline, self._providers
        if pipeline is None or providers is None:
            return False
        wanted = {
            "tracer_provider": tracer_provider if tracer_provider is not None else providers["tracer_provider"],
            "meter_provider": meter_provider if meter_provider is not None else providers["meter_provider"],
        }
        if all(wanted[name] is providers[name] for name in wanted):
            return False
        pipeline.telemetry = TelemetrySink.create(**wanted)
        self._providers = wanted
        return True

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._patcher is not None:
            self._patcher.revert()
            self._patcher = None
        self._pipeline = None
        self._providers = None

    @property
    def active(self) -> bool:
        """Hooks are in place (instrumented, and the SDK was present and supported)."""
        return self._patcher is not None and bool(self._patcher.applied)

    @property
    def skipped_hooks(self) -> dict[str, str]:
        """Hook points that could not be applied on the installed SDK, with the reason."""
        return dict(self._patcher.skipped) if self._patcher is not None else {}
