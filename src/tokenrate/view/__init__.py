"""tokenrate's local view: rolling TPM/RPM, provider time and session totals, with no OTel SDK needed.

* `View` is a local pipeline sink; `get_view` is the process-wide one (registered on first use), `snapshot`
  and `reset` act on it.
* `format_status` renders a one-line footer, `format_cost` a cost with its certainty (``≥$0.42``, ``?``),
  `render_summary` a session summary
  (`install_summary_at_exit` prints it when the program ends).
* `start_publishing` writes the process's snapshot to a per-user state directory every second for
  ``tokenrate top`` (`read_published`); opt-in with ``TOKENRATE_PUBLISH=1``. `SnapshotPublisher` is the writer
  itself, for other directories (``tokenrate run``);
* `process_rows` renders a snapshot as table rows (the whole process, then per model or per attribute value),
  as ``tokenrate top`` shows them; ``snapshot().by(key)`` gives the totals per value of a call attribute.
"""

from __future__ import annotations

from tokenrate.view._format import fmt_cost as format_cost
from tokenrate.view.core import (
    MAX_KEYS,
    View,
    get_view,
    reset,
    set_budget_provider,
    set_ledger_provider,
    snapshot,
)
from tokenrate.view.publish import (
    PublishedProcess,
    SnapshotPublisher,
    default_state_dir,
    maybe_start_publishing_from_env,
    read_published,
    start_publishing,
    stop_publishing,
)
from tokenrate.view.snapshot import (
    OVERFLOW_VALUE,
    GroupRow,
    LedgerStatus,
    ModelRow,
    RateLimitState,
    Rates,
    Snapshot,
    ThrottleTotals,
    TokenTotals,
    UsageFigures,
)
from tokenrate.view.status import format_status
from tokenrate.view.summary import install_summary_at_exit, render_summary
from tokenrate.view.table import FIGURE_COLUMNS, TableRow, process_rows

__all__ = [
    "FIGURE_COLUMNS",
    "MAX_KEYS",
    "OVERFLOW_VALUE",
    "GroupRow",
    "LedgerStatus",
    "ModelRow",
    "PublishedProcess",
    "RateLimitState",
    "Rates",
    "Snapshot",
    "SnapshotPublisher",
    "TableRow",
    "ThrottleTotals",
    "TokenTotals",
    "UsageFigures",
    "View",
    "default_state_dir",
    "format_cost",
    "format_status",
    "get_view",
    "install_summary_at_exit",
    "maybe_start_publishing_from_env",
    "process_rows",
    "read_published",
    "render_summary",
    "reset",
    "set_budget_provider",
    "set_ledger_provider",
    "snapshot",
    "start_publishing",
    "stop_publishing",
]
