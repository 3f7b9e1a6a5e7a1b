from psa.provisioning.client import start_tenant_creation
from psa.provisioning.types import AdminUser, TenantCreationInput
from tests.conftest import tenant_row_counts, unique_name


async def test_provisions_tenant(client, worker, engine):
    name = unique_name("Acme")
    req = TenantCreationInput(
        tenant_name=name,
        company_name=name + " Corporation",
        admin_user=AdminUser(first_name="John", last_name="Doe", email=f"john.{name[-10:]}@acme.com"),
    )
    handle = await start_tenant_creation(client, req, task_queue=worker)
    result = await handle.result()
    assert result.success
    counts = await tenant_row_counts(engine, result.tenant_id)
    print(counts)
    state = await handle.query("get_state")
    print(state)
