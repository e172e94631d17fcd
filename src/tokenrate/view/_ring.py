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

    Written for the call path (every call adds to two or more rings): a call ending in the current second
    (``head``) only bumps three ``head_*`` counters (the attempts columns hold failed attempts only: a call is
    an attempt too, `sum_attempts` adds them). The second is written into its slot, added to the running sums
    of the closed seconds and checked against the peaks when the window moves past it (`advance`). Peaks need
    no check per call: between two moves the window's sums only grow (counts are never negative), so their
    largest value is the one just before the move, or now (`peak_total`, `peak_calls`).
    """

    __slots__ = (
        "attempts",
        "calls",
        "head",
        "head_attempts",
        "head_calls",
        "head_in",
        "head_out",
        "inp",
        "out",
        "peak_calls_closed",
        "peak_total_closed",
        "closed_attempts",
        "closed_calls",
        "closed_in",
        "closed_out",
    )

    def __init__(self) -> None:
        self.inp = [0] * WINDOW_S
        self.out = [0] * WINDOW_S
        self.calls = [0] * WINDOW_S
        self.attempts = [0] * WINDOW_S
        self.closed_in = self.closed_out = self.closed_calls = self.closed_attempts = 0
        """Sums over the window's seconds before ``head``."""
        self.head_in = self.head_out = self.head_calls = self.head_attempts = 0
        """The counts of second ``head`` (its slot is written when the window moves on)."""
        self.peak_total_closed = self.peak_calls_closed = 0
        """The peaks up to the last move of the window."""
        self.head: int | None = None

    def advance(self, sec: int) -> None:
        """Move the window forward to ``sec``; seconds that leave it are subtracted and cleared."""
        head = self.head
        if head is None:
            self.head = sec
            return
        if sec <= head:
            return
        # The sums are at their largest just before seconds leave the window.
        total = self.closed_in + self.closed_out + self.head_in + self.head_out
        if total > self.peak_total_closed:
            self.peak_total_closed = total
        calls = self.closed_calls + self.head_calls
        if calls > self.peak_calls_closed:
            self.peak_calls_closed = calls
        inp, out, calls_col, attempts = self.inp, self.out, self.calls, self.attempts
        if sec - head >= WINDOW_S:
            for col in (inp, out, calls_col, attempts):
                col[:] = [0] * WINDOW_S
            self.closed_in = self.closed_out = self.closed_calls = self.closed_attempts = 0
        else:
            # Second ``head`` closes: into its slot and the sums (its slot was cleared when it became the head).
            i = head % WINDOW_S
            inp[i] = self.head_in
            out[i] = self.head_out
            calls_col[i] = self.head_calls
            attempts[i] = self.head_attempts
            self.closed_in += self.head_in
            self.closed_out += self.head_out
            self.closed_calls += self.head_calls
            self.closed_attempts += self.head_attempts
            for s in range(head + 1, sec + 1):
                i = s % WINDOW_S
                if calls_col[i] or attempts[i]:
                    self.closed_in -= inp[i]
                    self.closed_out -= out[i]
                    self.closed_calls -= calls_col[i]
                    self.closed_attempts -= attempts[i]
                    inp[i] = out[i] = calls_col[i] = attempts[i] = 0
        self.head_in = self.head_out = self.head_calls = self.head_attempts = 0
        self.head = sec

    def add_call(self, sec: int, inp: int, out: int) -> None:
        """One call ended at ``sec`` (its final attempt included). `tokenrate.view.core.View.call_ended` inlines
        the common case (``sec == head``)."""
        if sec == self.head:
            self.head_in += inp
            self.head_out += out
            self.head_calls += 1
            return
        i = self._closed_slot(sec)
        if i < 0:
            if i == _HEAD:
                self.add_call(sec, inp, out)
            return
        self.inp[i] += inp
        self.out[i] += out
        self.calls[i] += 1
        self.closed_in += inp
        self.closed_out += out
        self.closed_calls += 1

    def add_attempt(self, sec: int) -> None:
        """A failed attempt (a retry) at ``sec``: ``attempts`` count only these (a call is an attempt too)."""
        if sec == self.head:
            self.head_attempts += 1
            return
        i = self._closed_slot(sec)
        if i >= 0:
            self.attempts[i] += 1
            self.closed_attempts += 1
        elif i == _HEAD:
            self.head_attempts += 1

    def _closed_slot(self, sec: int) -> int:
        """The slot of ``sec``, a second before ``head`` still in the window; `_HEAD` when ``sec`` is (now) the
        head (the window moved to it), `_GONE` when ``sec`` already left the window."""
        head = self.head
        if head is None or sec > head:
            self.advance(sec)
            return _HEAD
        if sec <= head - WINDOW_S:
            return _GONE
        return sec % WINDOW_S

    # -- reading (snapshots) --------------------------------------------------------------------------------------

    @property
    def sum_in(self) -> int:
        return self.closed_in + self.head_in

    @property
    def sum_out(self) -> int:
        return self.closed_out + self.head_out

    @property
    def sum_total(self) -> int:
        return self.sum_in + self.sum_out

    @property
    def sum_calls(self) -> int:
        return self.closed_calls + self.head_calls

    @property
    def sum_attempts(self) -> int:
        return self.closed_attempts + self.head_attempts + self.sum_calls

    @property
    def peak_total(self) -> int:
        return max(self.peak_total_closed, self.sum_total)

    @property
    def peak_calls(self) -> int:
        return max(self.peak_calls_closed, self.sum_calls)

    def recent_weighted(self) -> tuple[int, int]:
        """Tokens and calls of the window's seconds, each weighted by ``head - second + 1``: in how many of the
        per-second window samples up to ``head`` it appears. O(WINDOW_S), for snapshots."""
        head = self.head
        if head is None:
            return 0, 0
        tokens = self.head_in + self.head_out
        calls = self.head_calls
        inp, out, counts = self.inp, self.out, self.calls
        for age in range(1, WINDOW_S):
            i = (head - age) % WINDOW_S
            if counts[i]:
                tokens += (inp[i] + out[i]) * (age + 1)
                calls += counts[i] * (age + 1)
        return tokens, calls


_HEAD = -1
_GONE = -2


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
