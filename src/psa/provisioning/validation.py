"""Input rules of tenant provisioning, without I/O (the workflow's update validator uses them too)."""

from __future__ import annotations

from uuid import UUID

from psa.domain.errors import ValidationError
from psa.domain.values import PRODUCT_CODES, TENANT_EMAIL_PROVIDERS, clean_name, normalize_email, tenant_slug
from psa.provisioning.types import AdminUser, TenantCreationInput, ValidatedRequest

BILLING_SOURCES = ("stripe", "apple_iap", "manual")
PASSWORD_MIN = 8
PASSWORD_MAX_BYTES = 72


def normalize_request(request: TenantCreationInput) -> ValidatedRequest:
    """Trim names, normalise the admin email, check enumerations; return the clean input and its slug.

    Raises ValidationError naming the first offending field (e.g. ``tenant_name``, ``admin_user.email``).
    """
    tenant_name = clean_name(request.tenant_name, field="tenant_name")
    slug = tenant_slug(tenant_name)
    admin = request.admin_user
    password = admin.password
    if password is not None and len(password) < PASSWORD_MIN:
        raise ValidationError(
            f"admin_user.password must be at least {PASSWORD_MIN} characters", field="admin_user.password"
        )
    if password is not None and len(password.encode()) > PASSWORD_MAX_BYTES:
        raise ValidationError(
            f"admin_user.password must be at most {PASSWORD_MAX_BYTES} bytes (bcrypt limit)",
            field="admin_user.password",
        )
    if request.email_provider not in TENANT_EMAIL_PROVIDERS:
        raise ValidationError(
            f"email_provider must be one of {', '.join(TENANT_EMAIL_PROVIDERS)} (got '{request.email_provider}')",
            field="email_provider",
        )
    if request.product_code not in PRODUCT_CODES:
        raise ValidationError(f"product_code must be one of {', '.join(PRODUCT_CODES)}", field="product_code")
    if request.billing_source not in BILLING_SOURCES:
        raise ValidationError(f"billing_source must be one of {', '.join(BILLING_SOURCES)}", field="billing_source")
    if request.license_count is not None and request.license_count < 1:
        raise ValidationError("license_count must be at least 1", field="license_count")
    tenant_id = None
    if request.tenant_id is not None:
        try:
            tenant_id = str(UUID(request.tenant_id))
        except ValueError as exc:
            raise ValidationError("tenant_id must be a UUID", field="tenant_id") from exc
    clean = request.model_copy(
        update={
            "tenant_name": tenant_name,
            "tenant_id": tenant_id,
            "company_name": clean_name(request.company_name, field="company_name", required=False),
            "client_name": clean_name(request.client_name, field="client_name", required=False),
            "contract_line": clean_name(request.contract_line, field="contract_line", required=False),
            "admin_user": AdminUser(
                first_name=clean_name(admin.first_name, field="admin_user.first_name"),
                last_name=clean_name(admin.last_name, field="admin_user.last_name"),
                email=normalize_email(admin.email, field="admin_user.email"),
                password=password,
            ),
        }
    )
    return ValidatedRequest(input=clean, slug=slug)
