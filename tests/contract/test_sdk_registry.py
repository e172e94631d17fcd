"""The one list of supported SDKs (`tokenrate.sdks`) agrees with the package metadata and everything that uses it.

``pyproject.toml`` cannot read Python, so its extras and entry points are checked here against the installed
metadata: a new SDK added to the registry but not to the package (or the other way round) fails this test.
"""

from __future__ import annotations

import importlib.metadata as metadata

import pytest
from packaging.requirements import Requirement

import tokenrate
from tokenrate import diagnostics
from tokenrate.sdks import SDKS, sdk_named

ENTRY_POINT_GROUP = "opentelemetry_instrumentor"


def _extras() -> dict[str, dict[str, Requirement]]:
    """tokenrate's extras, each as {distribution: requirement}."""
    extras: dict[str, dict[str, Requirement]] = {}
    for text in metadata.requires("tokenrate") or ():
        requirement = Requirement(text)
        marker = str(requirement.marker or "")
        for extra in metadata.metadata("tokenrate").get_all("Provides-Extra") or ():
            if f'extra == "{extra}"' in marker:
                extras.setdefault(extra, {})[requirement.name] = requirement
    return extras


def test_every_sdk_has_its_entry_point_and_only_those():
    ours = {
        entry_point.name: entry_point.value
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP)
        if entry_point.dist is not None and entry_point.dist.name == "tokenrate"
    }
    assert ours == {sdk.entry_point: sdk.instrumentor for sdk in SDKS}


@pytest.mark.parametrize("sdk", SDKS, ids=lambda sdk: sdk.name)
def test_every_sdk_has_its_extra_with_the_supported_versions(sdk):
    extras = _extras()
    wanted = Requirement(sdk.requirement)
    assert extras[sdk.extra][sdk.name].specifier == wanted.specifier
    assert extras["instruments-any"][sdk.name].specifier == wanted.specifier
    assert sdk.name in extras["test"], "CI installs the test extra: every SDK must be tested"


@pytest.mark.parametrize("sdk", SDKS, ids=lambda sdk: sdk.name)
def test_every_instrumentor_supports_what_the_registry_says(sdk):
    instrumentor = sdk.instrumentor_class()
    assert instrumentor.sdk == sdk.name
    assert tuple(instrumentor().instrumentation_dependencies()) == (sdk.requirement,)


def test_diagnostics_reports_every_sdk_in_registry_order():
    assert [report["sdk"] for report in diagnostics.collect()["sdks"]] == [sdk.name for sdk in SDKS]


def test_an_unknown_sdk_name_lists_the_supported_ones():
    with pytest.raises(ValueError, match="unknown SDK 'nope'; expected one of openai, anthropic"):
        tokenrate.instrument(["nope"])
    with pytest.raises(ValueError, match="unknown SDK"):
        sdk_named("nope")


def test_the_simulator_serves_every_sdk(sim):
    from tokenrate.simulator._server import PROTOCOL_MODULES

    for sdk in SDKS:
        assert sdk.simulator_protocol in PROTOCOL_MODULES
        assert sim.base_url_for(sdk.name).startswith(sim.base_url)
