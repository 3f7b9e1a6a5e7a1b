"""Tenant provisioning on Temporal: TenantCreationWorkflow, its activities and types."""
