"""Argument types for the CLI's numbers: the same ranges as the ``TOKENRATE_*`` variables, refused with a message.

argparse turns the ``ArgumentTypeError`` into ``tokenrate CMD: error: argument --X: ...`` and exit code 2, so an
``inf`` or ``nan`` never reaches a timer or a loop.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from tokenrate._env import INTERVAL_MAX_S, INTERVAL_MIN_S


def number(minimum: float, maximum: float, *, integer: bool = False) -> Callable[[str], float]:
    """An argparse ``type``: a finite number in ``[minimum, maximum]`` (a whole one with ``integer``)."""
    kind = "a whole number" if integer else "a number"

    def parse(text: str) -> float:
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and minimum <= value <= maximum):
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind} from {minimum:g} to {maximum:g}")
        return value

    return parse


SECONDS = number(INTERVAL_MIN_S, INTERVAL_MAX_S)
"""A refresh interval: the range of TOKENRATE_PUBLISH_INTERVAL and TOKENRATE_RUN_INTERVAL."""
