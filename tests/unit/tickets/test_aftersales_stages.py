"""Each kind's stages: where a case may go next, and which stages close it."""

from __future__ import annotations

import itertools

import pytest

from crm.tickets.aftersales_models import (
    CLOSED,
    PATHS,
    TARGETS,
    CaseKind,
    Stage,
    next_stages,
)


@pytest.mark.parametrize("kind", list(CaseKind))
def test_every_path_opens_submitted_and_ends_closed(kind: CaseKind) -> None:
    path = PATHS[kind]
    assert path[0] is Stage.SUBMITTED
    assert path[-1] in CLOSED
    assert all(stage not in CLOSED for stage in path[:-1])
    assert all(stage in TARGETS for stage in path[:-1])  # every open stage has a target time
    for here, there in itertools.pairwise(path):
        assert next_stages(kind, here)[0] is there


def test_a_return_can_be_rejected_at_review_or_inspection_and_cancelled_until_picked_up() -> None:
    ret = CaseKind.RETURN
    assert next_stages(ret, Stage.SUBMITTED) == [Stage.APPROVED, Stage.REJECTED, Stage.CANCELLED]
    assert next_stages(ret, Stage.PICKUP_SCHEDULED) == [Stage.PICKED_UP, Stage.CANCELLED]
    assert next_stages(ret, Stage.PICKED_UP) == [Stage.INSPECTING]
    assert next_stages(ret, Stage.INSPECTING) == [Stage.REFUNDED, Stage.REJECTED]
    for closed in CLOSED:
        assert next_stages(ret, closed) == []
