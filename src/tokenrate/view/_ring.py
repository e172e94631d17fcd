"""A fixed-size ring of one-second buckets: the rolling 60 s window behind TPM and RPM.

The window at second ``head`` is the 60 whole seconds ``head - 59 .. head`` (the current, partial second
included). An event at time ``t`` lands in second ``floor(t)``, so it counts while ``now < floor(t) + 60`` and
drops out at ``now >= floor(t) + 60``. Each column keeps a running sum over the window, so adding an event is
O(1) and reading the window is O(1) after `advance` (which touches at most `WINDOW_S` slots, however long the
gap since the last event). Memory is fixed: ``columns x WINDOW_S`` numbers, whatever the session does.
"""

from __future__ import annotations

WINDOW_S = 60
"""Length of the rolling window in seconds (providers' TPM/RPM limits are per minute)."""


def second_of(t: float) -> int:
    """The bucket second of a time: floor, also right for negative test clocks."""
    return int(t // 1)


class Ring:
    """Integer columns (tokens, calls) over the rolling window, with exact running sums and peaks."""

    __slots__ = ("data", "head", "peaks", "sums")

    def __init__(self, columns: int) -> None:
        self.data: list[list[int]] = [[0] * WINDOW_S for _ in range(columns)]
        self.sums: list[int] = [0] * columns
        self.peaks: list[int] = [0] * columns
        self.head: int | None = None

    def advance(self, sec: int) -> None:
        """Move the window forward to ``sec``; seconds that leave it are subtracted and cleared."""
        head = self.head
        if head is None:
            self.head = sec
            return
        if sec <= head:
            return
        if sec - head >= WINDOW_S:
            for col in self.data:
                for i in range(WINDOW_S):
                    col[i] = 0
            for c in range(len(self.sums)):
                self.sums[c] = 0
        else:
            sums = self.sums
            for s in range(head + 1, sec + 1):
                i = s % WINDOW_S
                for c, col in enumerate(self.data):
                    v = col[i]
                    if v:
                        sums[c] -= v
                        col[i] = 0
        self.head = sec

    def add(self, sec: int, column: int, value: int) -> bool:
        """Add ``value`` at second ``sec``; False (and nothing added) when it is already out of the window."""
        if self.head is None or sec > self.head:
            self.advance(sec)
        elif sec <= self.head - WINDOW_S:
            return False
        self.data[column][sec % WINDOW_S] += value
        self.sums[column] += value
        return True

    def sample_peaks(self) -> None:
        """Remember the largest window sum seen per column (call after adding, or at a snapshot)."""
        peaks = self.peaks
        for c, v in enumerate(self.sums):
            if v > peaks[c]:
                peaks[c] = v


class BusyRing:
    """Seconds of provider time per one-second bucket (floats, summed at read time to avoid float drift)."""

    __slots__ = ("data", "head")

    def __init__(self) -> None:
        self.data: list[float] = [0.0] * WINDOW_S
        self.head: int | None = None

    def advance(self, sec: int) -> None:
        head = self.head
        if head is None:
            self.head = sec
            return
        if sec <= head:
            return
        data = self.data
        if sec - head >= WINDOW_S:
            for i in range(WINDOW_S):
                data[i] = 0.0
        else:
            for s in range(head + 1, sec + 1):
                data[s % WINDOW_S] = 0.0
        self.head = sec

    def add_span(self, start: float, end: float) -> None:
        """Spread the busy interval ``[start, end]`` over the buckets it covers that are still in the window."""
        if end <= start:
            return
        last = second_of(end)
        if self.head is None or last > self.head:
            self.advance(last)
        head = self.head
        assert head is not None
        first = max(second_of(start), head - WINDOW_S + 1)
        last = min(last, head)
        data = self.data
        for s in range(first, last + 1):
            overlap = min(end, s + 1) - max(start, s)
            if overlap > 0:
                data[s % WINDOW_S] += overlap

    def total(self) -> float:
        return sum(self.data)

    def window_start(self) -> float | None:
        """Start time of the oldest second in the window (``None`` before anything happened)."""
        return None if self.head is None else float(self.head - WINDOW_S + 1)
