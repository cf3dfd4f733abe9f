"""HTTP abuse against `refineryiq run --simulate`: a flood of bad logins is rate-limited and
costs the daemon no memory; the OpenAPI-driven fuzzer with a large budget (long version only)
never gets a 5xx.

The short version sends 1,000 bad logins; the schemathesis run (200 examples per operation,
positive and negative) is marked slow. tests/integration/test_seed_api_fuzz.py keeps the small
fuzz budget in the default run.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from gateway.services.accounts.users import Role
from tests.support import fault_report
from tests.support.daemon import DaemonProcess, state_with_users
from tests.support.faults import post_json, process_use

pytestmark = pytest.mark.faults

PASSWORD = "correct horse battery"
BAD_LOGINS = 1000
WARM_UP_LOGINS = 1000  # a first flood: allocator arenas and caches settle before measuring
FLOOD_THREADS = 8
# Resident memory the flood may add: allocator noise, not a table growing with each attempt.
MAX_RSS_GROWTH_BYTES = 8 * 1024 * 1024
FUZZ_EXAMPLES_PER_OPERATION = 200


@pytest.fixture
def daemon(tmp_path):
    # One daemon per test: after a login flood from loopback the rate limiter rightly refuses
    # every login from there for a while, the fuzzer's own included.
    state = state_with_users(tmp_path / "state", PASSWORD, {"sofia": Role.SUPERVISOR})
    d = DaemonProcess(state, env={"REFINERYIQ_OPCUA_SERVER__ENABLED": "false"}).start()
    d.wait_healthy(90)
    yield d
    assert d.proc.poll() is None, "the daemon died under HTTP abuse"
    d.kill()


def bad_login(daemon: DaemonProcess, n: int) -> int:
    status, _ = post_json(f"{daemon.url}/api/auth/login",
                          {"username": f"intruder-{n}", "password": f"guess-{n}"})
    return status


def test_a_thousand_bad_logins_are_rate_limited_and_cost_no_memory(daemon):
    with ThreadPoolExecutor(FLOOD_THREADS) as pool:
        warm = Counter(pool.map(lambda n: bad_login(daemon, n), range(WARM_UP_LOGINS)))
        before = process_use(daemon.proc.pid).rss_bytes
        flood = Counter(pool.map(lambda n: bad_login(daemon, n),
                                 range(WARM_UP_LOGINS, WARM_UP_LOGINS + BAD_LOGINS)))
    after = process_use(daemon.proc.pid).rss_bytes
    fault_report.record(
        "http-bad-logins", "1,000 bad logins are rate-limited (429) and cost no memory",
        bad_logins=BAD_LOGINS, answered_429=flood[429], answered_401=flood[401],
        other_statuses={str(k): v for k, v in flood.items() if k not in (401, 429)},
        rss_growth_bytes=after - before)
    assert set(warm) | set(flood) <= {401, 429}, (warm, flood)
    assert flood[429] >= BAD_LOGINS * 0.9, flood  # almost every attempt refused unanswered
    assert after - before < MAX_RSS_GROWTH_BYTES, (before, after)
    # The flood does not take the gateway down with it.
    assert daemon.get("/health")[1]["status"] == "healthy"


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_fuzzer_with_a_large_budget_never_gets_a_5xx(daemon):
    from schemathesis import GenerationMode

    from tests.support.api_fuzz import answers_5xx, api_operations

    status, body = post_json(daemon.url + "/api/auth/login",
                             {"username": "sofia", "password": PASSWORD})
    assert status == 200, body
    headers = {"Authorization": f"Bearer {body['token']}"}
    operations = api_operations(daemon.url)
    failures: list[str] = []
    calls = 0
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for operation in operations:
            failures += answers_5xx(operation, mode, headers, FUZZ_EXAMPLES_PER_OPERATION,
                                    timeout_s=30)
            calls += 1
    fault_report.record(
        "http-fuzz", "schemathesis over the OpenAPI document: 0 5xx",
        operations=len(operations), examples_per_operation=FUZZ_EXAMPLES_PER_OPERATION,
        modes=["positive", "negative"], operation_runs=calls, responses_5xx=len(failures))
    assert not failures, "\n".join(failures[:20])
    assert daemon.get("/health")[1]["status"] in ("healthy", "degraded")
