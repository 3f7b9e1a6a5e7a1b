"""Interactions (CRM activities): interaction types (the global catalogue and a tenant's own), interaction
statuses, and logging, updating, completing and finding interactions against a client, contact and ticket
(reference: contacts.add_interaction, clients.add_interaction and the crm.* actions).

``models`` holds the pydantic models, the activity query and the input rules, ``service`` the writes and the
reads by id, ``scheduling`` the rules and the insert of a scheduled follow-up, and ``search`` the filtered
activity page, the dependency counts and the lookups the crm.* actions use. Callers use this package:
``interactions.create_interaction(...)``.
"""

from psa.domain.interactions.models import (
    ACTIVITY_PATCH_FIELDS,
    DURATION_MAX,
    INVALID_STATUS,
    INVALID_TYPE,
    VISIBILITIES,
    Activity,
    ActivityFilters,
    ActivityState,
    Interaction,
    InteractionStatus,
    InteractionType,
    TenantInteractionType,
    Visibility,
)
from psa.domain.interactions.scheduling import FollowUp, schedule_activity
from psa.domain.interactions.search import (
    count_interactions_for_client,
    count_interactions_for_contact,
    find_activities,
    find_system_interaction_type,
    require_user,
)
from psa.domain.interactions.service import (
    check_activity_type_and_status,
    closed_interaction_status,
    complete_activity,
    create_interaction,
    create_interaction_type,
    default_interaction_status,
    find_activity,
    find_interaction,
    find_interaction_status,
    find_interaction_type,
    get_activity,
    get_interaction,
    require_interaction_status,
    resolve_interaction_type,
    update_activity,
)

__all__ = [
    "ACTIVITY_PATCH_FIELDS",
    "DURATION_MAX",
    "INVALID_STATUS",
    "INVALID_TYPE",
    "VISIBILITIES",
    "Activity",
    "ActivityFilters",
    "ActivityState",
    "FollowUp",
    "Interaction",
    "InteractionStatus",
    "InteractionType",
    "TenantInteractionType",
    "Visibility",
    "check_activity_type_and_status",
    "closed_interaction_status",
    "complete_activity",
    "count_interactions_for_client",
    "count_interactions_for_contact",
    "create_interaction",
    "create_interaction_type",
    "default_interaction_status",
    "find_activities",
    "find_activity",
    "find_interaction",
    "find_interaction_status",
    "find_interaction_type",
    "find_system_interaction_type",
    "get_activity",
    "get_interaction",
    "require_interaction_status",
    "require_user",
    "resolve_interaction_type",
    "schedule_activity",
    "update_activity",
]
