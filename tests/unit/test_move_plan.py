"""The decisions of the move from Procrastinate's tables (which waiting jobs
move, and why the others stay) and its report's summary line."""

from __future__ import annotations

from typing import Any

from procrastinate_anyio.connectors import MoveSkip, ProcrastinateMove
from procrastinate_anyio.connectors.postgres._ops import plan_move


def candidate(job_id: int, **fields: Any) -> dict[str, Any]:
    """A row of ``procrastinate_move_candidates``."""
    return {
        "id": job_id,
        "lock": None,
        "queueing_lock": None,
        "future": False,
        "valid": True,
        **fields,
    }


def test_plan_keeps_order_and_says_why() -> None:
    """Movable jobs keep their order; each one left behind has its reason."""
    rows = [
        candidate(1),
        candidate(2, queueing_lock="Q"),
        candidate(3, lock="D"),
        candidate(4, valid=False),
        candidate(5, lock="L", queueing_lock="R"),
    ]

    moving, skipped = plan_move(rows, {"Q"}, {"D"})

    assert [row["id"] for row in moving] == [1, 5]
    assert [skip.job_id for skip in skipped] == [2, 3, 4]
    assert "queueing lock 'Q' is taken" in skipped[0].reason
    assert "lock 'D' is held by a running Procrastinate job" in skipped[1].reason
    assert "arguments that are not an object" in skipped[2].reason


def test_summary() -> None:
    """One line: what moved or would move, what stayed."""
    report = ProcrastinateMove(
        dry_run=False,
        moved=(1, 2),
        new_ids=(10, 11),
        scheduled=1,
        periodic_ticks=3,
        skipped=(MoveSkip(job_id=4, reason="x"),),
        doing=2,
    )

    assert report.summary() == (
        "Moved 2 job(s) (1 scheduled) and 3 periodic tick(s) from Procrastinate's "
        "tables; skipped 1 waiting job(s); left 2 doing job(s)"
    )
    dry = ProcrastinateMove(dry_run=True, active_workers=1)
    assert dry.summary().startswith("Would move 0 job(s)")
    assert dry.summary().endswith("; 1 Procrastinate worker(s) active")
