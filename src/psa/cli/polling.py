"""Whether a worker polls the task queue: ``psa tenants create`` warns when none does, and
``psa worker --detach`` waits for the one it started."""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from psa.config import Settings
from psa.temporal import connect


async def has_pollers(client: Client, settings: Settings) -> bool:
    """Whether any worker polls the workflow task queue right now."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=settings.temporal_namespace,
            task_queue=TaskQueue(name=settings.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return len(response.pollers) > 0


async def wait_for_pollers(settings: Settings, *, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for a worker to poll the task queue; whether one does."""
    client = await connect(settings)
    deadline = asyncio.get_running_loop().time() + timeout
    while not await has_pollers(client, settings):
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.25)
    return True
