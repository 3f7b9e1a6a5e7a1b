"""The `psa` command line as a user runs it, against the test stack and an in-process worker."""

from __future__ import annotations

import asyncio
import sys
import urllib.request
import uuid

import pytest
from temporalio.service import RPCError, RPCStatusCode

from psa.domain.values import tenant_slug
from psa.provisioning.starter import start_tenant_creation
from psa.provisioning.workflow import derived_id, workflow_id_for
from tests.factories import make_request
from tests.helpers import ActivityHooks, cli_env, free_port, psa, rows, scalar, tenant_row_counts, wait_for


async def test_create_status_list_and_rerun(base_settings, worker):
    name = f"Cli Corp {uuid.uuid4().hex[:8]}"
    email = f"jane.{uuid.uuid4().hex[:8]}@cli.example.com"
    args = [
        "tenants",
        "create",
        "--name",
        name,
        "--admin-email",
        email,
        "--admin-first-name",
        "Jane",
        "--admin-last-name",
        "Roe",
        "--company-name",
        name + " Inc",
    ]
    code, out = await psa(base_settings, worker, *args)
    assert code == 0, out
    assert "completed" in out
    assert "100%" in out
    assert "temporary password" in out
    assert "change it at first login" in out
    assert "welcome email written to:" in out
    assert ".eml" in out

    code, again = await psa(base_settings, worker, *args)
    assert code == 0
    assert "tenant already exists" in again

    code, status = await psa(base_settings, worker, "tenants", "status", name)
    assert code == 0
    assert "COMPLETED" in status
    assert "progress" in status

    code, listing = await psa(base_settings, worker, "tenants", "list")
    assert code == 0
    assert name + " Inc" in listing
    assert email in listing


async def test_bad_input_is_rejected_before_starting(base_settings, worker):
    code, out = await psa(
        base_settings,
        worker,
        "tenants",
        "create",
        "--name",
        "  ",
        "--admin-email",
        "a@example.com",
        "--admin-first-name",
        "A",
        "--admin-last-name",
        "B",
    )
    assert code == 2
    assert "tenant_name" in out
    assert "required" in out
    code, out = await psa(
        base_settings,
        worker,
        "tenants",
        "create",
        "--name",
        "Valid Name",
        "--admin-email",
        "nope",
        "--admin-first-name",
        "A",
        "--admin-last-name",
        "B",
    )
    assert code == 2
    assert "admin_user.email" in out
    code, out = await psa(
        base_settings,
        worker,
        "tenants",
        "create",
        "--name",
        "Valid Name",
        "--admin-email",
        "a@example.com",
        "--admin-first-name",
        "A",
        "--admin-last-name",
        "B",
        "--email-provider",
        "pigeon",
    )
    assert code == 2
    assert "email_provider" in out


async def test_duplicate_admin_email_is_refused_before_starting(base_settings, worker, client, engine):
    """The workflow's validation runs before the start (psa.provisioning.preflight): no run, nothing written."""
    email = f"dup.{uuid.uuid4().hex[:8]}@cli.example.com"
    base = ["--admin-email", email, "--admin-first-name", "A", "--admin-last-name", "B"]
    code, out = await psa(base_settings, worker, "tenants", "create", "--name", f"First {uuid.uuid4().hex[:6]}", *base)
    assert code == 0, out
    second = f"Second {uuid.uuid4().hex[:6]}"
    code, out = await psa(base_settings, worker, "tenants", "create", "--name", second, *base)
    assert code == 2, out
    assert "internal user with this email already exists" in out
    assert "workflow" not in out
    workflow_id = workflow_id_for(tenant_slug(second))
    with pytest.raises(RPCError) as missing:
        await client.get_workflow_handle(workflow_id).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND
    assert set((await tenant_row_counts(engine, derived_id(workflow_id, "tenant"))).values()) == {0}


async def test_product_chooses_the_seed_set(base_settings, worker, engine):
    name = f"Desk Corp {uuid.uuid4().hex[:8]}"
    admin = ["--admin-email", f"desk.{uuid.uuid4().hex[:8]}@cli.example.com"]
    admin += ["--admin-first-name", "A", "--admin-last-name", "B"]
    code, out = await psa(base_settings, worker, "tenants", "create", "--name", name, "--product", "algadesk", *admin)
    assert code == 0, out
    tenant = derived_id(workflow_id_for(tenant_slug(name)), "tenant")
    assert await scalar(engine, "SELECT product_code FROM tenants WHERE tenant = :t", t=tenant) == "algadesk"
    roles = await rows(engine, "SELECT role_name FROM roles WHERE tenant = :t AND msp", t=tenant)
    assert {r.role_name for r in roles} == {"Admin", "Agent"}

    code, out = await psa(base_settings, worker, "tenants", "create", "--name", name + " 2", "--product", "erp", *admin)
    assert code == 2
    assert "product_code" in out


async def test_no_wait_then_update_then_cancel(base_settings, start_worker, engine):
    reached, release = asyncio.Event(), asyncio.Event()

    async def pause(info) -> None:
        reached.set()
        await release.wait()

    task_queue = await start_worker(interceptors=[ActivityHooks({"seed_tenant": pause})])
    name = f"Paused Corp {uuid.uuid4().hex[:8]}"
    code, out = await psa(
        base_settings,
        task_queue,
        "tenants",
        "create",
        "--name",
        name,
        "--admin-email",
        f"p.{uuid.uuid4().hex[:8]}@cli.example.com",
        "--admin-first-name",
        "P",
        "--admin-last-name",
        "Q",
        "--no-wait",
    )
    assert code == 0
    assert "tenant-creation-" in out
    assert "warning" not in out
    await asyncio.wait_for(reached.wait(), 30)

    code, out = await psa(
        base_settings, task_queue, "tenants", "update", name, "--field", "email_provider", "--value", "smtp"
    )
    assert code == 0
    assert "email_provider updated at step seeding" in out
    code, out = await psa(
        base_settings, task_queue, "tenants", "update", name, "--field", "company_name", "--value", '"Too Late"'
    )
    assert code == 1
    assert "already used by step 'creating_tenant'" in out

    code, out = await psa(base_settings, task_queue, "tenants", "cancel", name, "--reason", "duplicate order")
    assert code == 0
    release.set()
    workflow_id = workflow_id_for(name.lower().replace(" ", "-"))

    async def cancelled() -> bool:
        code, status = await psa(base_settings, task_queue, "tenants", "status", workflow_id)
        return "cancelled" in status and "duplicate order" in status

    await wait_for(cancelled, timeout=60, interval=0.5)
    assert set((await tenant_row_counts(engine, derived_id(workflow_id, "tenant"))).values()) == {0}


async def test_warns_when_no_worker_polls(base_settings, client):
    name = f"Lonely {uuid.uuid4().hex[:6]}"
    code, out = await psa(
        base_settings,
        f"nobody-{uuid.uuid4()}",
        "tenants",
        "create",
        "--name",
        name,
        "--admin-email",
        f"l.{uuid.uuid4().hex[:6]}@cli.example.com",
        "--admin-first-name",
        "L",
        "--admin-last-name",
        "M",
        "--no-wait",
    )
    assert code == 0
    assert "no worker polls task queue" in out
    await client.get_workflow_handle("tenant-creation-" + name.lower().replace(" ", "-")).terminate("test done")


async def test_bootstrap_management_then_create_tracks_the_customer_and_reconcile_finds_it(base_settings, start_worker):
    mgmt_name = f"Mgmt {uuid.uuid4().hex[:8]}"
    settings = base_settings.model_copy(update={"management_tenant_name": mgmt_name})
    task_queue = await start_worker(settings=settings)
    env = {"PSA_MANAGEMENT_TENANT_NAME": mgmt_name}

    code, out = await psa(base_settings, task_queue, "tenants", "bootstrap-management", env=env)
    assert code == 0, out
    assert "created" in out, out
    code, out = await psa(base_settings, task_queue, "tenants", "bootstrap-management", env=env)
    assert code == 0
    assert "already exists" in out

    name = f"Tracked {uuid.uuid4().hex[:8]}"
    code, out = await psa(
        base_settings,
        task_queue,
        "tenants",
        "create",
        "--name",
        name,
        "--admin-email",
        f"t.{uuid.uuid4().hex[:8]}@tracked.example.com",
        "--admin-first-name",
        "T",
        "--admin-last-name",
        "R",
        env=env,
    )
    assert code == 0, out
    assert f"ok: client '{name}'" in out, out

    slug = name.lower().replace(" ", "-")
    code, out = await psa(base_settings, task_queue, "customers", "reconcile", "--dry-run", "--tenant", slug, env=env)
    assert code == 0, out
    assert "1 ok" in out, out


async def test_reconcile_without_management_tenant_says_what_to_do(base_settings, worker):
    env = {"PSA_MANAGEMENT_TENANT_NAME": f"Missing {uuid.uuid4().hex[:8]}"}
    code, out = await psa(base_settings, worker, "customers", "reconcile", env=env)
    assert code == 1
    assert "bootstrap-management" in out


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode()
    except OSError:
        return None


async def test_worker_serves_metrics_that_count_its_provisionings(base_settings, client):
    port, task_queue = free_port(), f"metrics-{uuid.uuid4()}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "psa.cli",
        "worker",
        "--metrics-port",
        str(port),
        env=cli_env(base_settings, task_queue),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        body = await wait_for(lambda: asyncio.to_thread(_get, url), timeout=60)
        assert 'psa_customer_tracking_total{status="failed"} 0.0' in body
        handle = await start_tenant_creation(client, make_request(), task_queue=task_queue)
        result = await handle.result()
        assert result.customer_tracking.status == "failed"  # the test database has no management tenant
        body = await asyncio.to_thread(_get, url)
        assert 'psa_customer_tracking_total{status="failed"} 1.0' in body
        assert 'psa_provisioning_duration_seconds_count{outcome="completed"} 1.0' in body
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=30)
