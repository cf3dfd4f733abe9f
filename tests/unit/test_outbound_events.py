"""The alarm_journal.event the historian gets for each kind of alarm transition."""

import pytest

from analytics.alarm_types import AlarmState as S
from gateway.store.postgres.outbound_kinds import journal_event


@pytest.mark.parametrize(("from_state", "to_state", "event"), [
    (S.NORMAL, S.UNACK, "ACTIVATE"),
    (S.RTN_UNACK, S.UNACK, "ACTIVATE"),  # active again before anyone acknowledged
    (S.UNACK, S.ACKED, "ACKNOWLEDGE"),
    (S.RTN_UNACK, S.NORMAL, "ACKNOWLEDGE"),  # acknowledged after it returned
    (S.UNACK, S.RTN_UNACK, "CLEAR"),
    (S.ACKED, S.NORMAL, "CLEAR"),
    (S.UNACK, S.UNACK, "ESCALATE"),
    (S.ACKED, S.SHELVED, "SHELVE"),
    (S.SHELVED, S.NORMAL, "UNSHELVE"),
    (S.NORMAL, S.SUPPRESSED, "OUT_OF_SERVICE"),
    (S.SUPPRESSED, S.NORMAL, "RETURN_TO_SERVICE"),
])
def test_journal_event_names_the_transition(from_state, to_state, event):
    assert journal_event(from_state.value, to_state.value) == event
