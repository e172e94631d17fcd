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


class CallRing:
    """Per-second tokens, calls and attempts over the rolling window, with exact running sums and peaks.

    Five integer columns (input, output, total tokens, calls, attempts). Written out column by column rather
    than as a generic table: this is on every call's path.
    """

    __slots__ = (
        "attempts",
        "calls",
        "head",
        "inp",
        "out",
        "peak_calls",
        "peak_total",
        "sum_attempts",
        "sum_calls",
        "sum_in",
        "sum_out",
        "sum_total",
        "total",
    )

    def __init__(self) -> None:
        self.inp = [0] * WINDOW_S
        self.out = [0] * WINDOW_S
        self.total = [0] * WINDOW_S
        self.calls = [0] * WINDOW_S
        self.attempts = [0] * WINDOW_S
        self.sum_in = self.sum_out = self.sum_total = self.sum_calls = self.sum_attempts = 0
        self.peak_total = self.peak_calls = 0
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
            for col in (self.inp, self.out, self.total, self.calls, self.attempts):
                col[:] = [0] * WINDOW_S
            self.sum_in = self.sum_out = self.sum_total = self.sum_calls = self.sum_attempts = 0
        else:
            inp, out, total, calls, attempts = self.inp, self.out, self.total, self.calls, self.attempts
            for s in range(head + 1, sec + 1):
                i = s % WINDOW_S
                if calls[i] or attempts[i]:
                    self.sum_in -= inp[i]
                    self.sum_out -= out[i]
                    self.sum_total -= total[i]
                    self.sum_calls -= calls[i]
                    self.sum_attempts -= attempts[i]
                    inp[i] = out[i] = total[i] = calls[i] = attempts[i] = 0
        self.head = sec

    def _slot(self, sec: int) -> int:
        """The slot of ``sec``, advancing the window if needed; -1 when ``sec`` already left the window."""
        head = self.head
        if head is None or sec > head:
            self.advance(sec)
        elif sec <= head - WINDOW_S:
            return -1
        return sec % WINDOW_S

    def add_call(self, sec: int, inp: int, out: int) -> None:
        """One call ended at ``sec`` (its final attempt included); peaks are sampled right after."""
        i = self._slot(sec)
        if i < 0:
            return
        both = inp + out
        self.inp[i] += inp
        self.out[i] += out
        self.total[i] += both
        self.calls[i] += 1
        self.attempts[i] += 1
        self.sum_in += inp
        self.sum_out += out
        self.sum_attempts += 1
        self.sum_total += both
        if self.sum_total > self.peak_total:
            self.peak_total = self.sum_total
        self.sum_calls += 1
        if self.sum_calls > self.peak_calls:
            self.peak_calls = self.sum_calls

    def recent_weighted(self) -> tuple[int, int]:
        """Tokens and calls of the window's seconds, each weighted by ``head - second + 1``: in how many of the
        per-second window samples up to ``head`` it appears. O(WINDOW_S), for snapshots."""
        head = self.head
        if head is None:
            return 0, 0
        tokens = calls = 0
        total, counts = self.total, self.calls
        for age in range(WINDOW_S):
            i = (head - age) % WINDOW_S
            if counts[i]:
                tokens += total[i] * (age + 1)
                calls += counts[i] * (age + 1)
        return tokens, calls

    def add_attempt(self, sec: int) -> None:
        """A failed attempt (a retry) at ``sec``."""
        i = self._slot(sec)
        if i >= 0:
            self.attempts[i] += 1
            self.sum_attempts += 1


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
        last = int(end // 1)
        if last == self.head and int(start // 1) == last:  # the common case: a short call within this second
            self.data[last % WINDOW_S] += end - start
            return
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
