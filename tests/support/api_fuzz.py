"""Fuzzing the HTTP API from its own OpenAPI document (schemathesis): an input, valid or not,
that makes the gateway answer 5xx is a failure. The budget (examples per operation) is the
caller's: a few in the default run, hundreds in the fault suite's long run."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

# The SSE stream never ends, and logout would revoke the fuzzer's own token.
SKIPPED_PATHS = ("/api/stream", "/api/auth/logout")


def api_operations(url: str, skipped_paths: tuple[str, ...] = SKIPPED_PATHS) -> list:
    """The operations of the daemon's OpenAPI document at ``url``, less ``skipped_paths``."""
    schema = schemathesis.openapi.from_url(url + "/api/openapi.json")
    return [result.ok() for result in schema.get_all_operations()
            if result.ok().path not in skipped_paths]


def answers_5xx(operation, mode: GenerationMode, headers: dict[str, str], examples: int,
                timeout_s: float) -> list[str]:
    """Call ``operation`` with ``examples`` generated cases; each case answered 5xx, described."""
    failures: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    def run(case) -> None:
        response = case.call(headers=headers, timeout=timeout_s)
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} {case.query} "
                            f"{case.body!r}: {response.status_code} {response.text[:200]}")

    try:
        run()
    except Unsatisfiable:
        # Only negative generation can find nothing: an operation with no invalid input.
        assert mode is GenerationMode.NEGATIVE
    return failures
