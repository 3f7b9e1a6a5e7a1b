"""Run only by tests/integration/test_suite_lifetime.py, as a pytest session of its own (the name keeps it out of
the suite's collection): it reports whether Temporal still knows the workflow a previous session left, then leaves
one."""

from __future__ import annotations

import json
import os
from pathlib import Path

from temporalio.service import RPCError, RPCStatusCode

PROBE_WORKFLOW = "suite-lifetime-probe"


async def test_probe(client, stack):
    try:
        await client.get_workflow_handle(PROBE_WORKFLOW).describe()
        seen = True
    except RPCError as exc:
        assert exc.status == RPCStatusCode.NOT_FOUND, exc
        seen = False
    # A workflow type no worker polls for: it stays open, as long as its Temporal keeps its state.
    await client.start_workflow("SuiteLifetimeProbe", id=PROBE_WORKFLOW, task_queue="suite-lifetime-probe")
    Path(os.environ["PSA_SESSION_PROBE"]).write_text(json.dumps({"seen_before": seen, "pg_pid": stack.postgres_pid()}))
