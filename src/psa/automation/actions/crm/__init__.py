"""The ``crm.*`` activity actions (reference: the crm actions; docs/automation.md, "Action contract"; the
catalog is docs/actions.md): notes, finding, updating, scheduling, status changes, interaction types, tagging,
and (beyond the reference, Odoo's "mark as done") completing an activity with an optional next follow-up. The
quote actions are in ``actions/quotes.py``.

Conventions are those of ``actions/clients``: version 1, category "Business Operations", pydantic input and
output models, permissions checked by the runtime before the handler (``input_permissions`` adds the ones a
given input implies: ``contact:read`` when finding by contact, ``{target}:update`` for a note), domain models
in the runtime's tenant transaction, audit data through ``ctx.audit`` and events through the outbox
(``ctx.emit``) with deterministic keys.

Every activity in an output is an ActivitySummary, plus (beyond the reference) ``state`` (overdue / today /
planned / done in the owner's time zone, None for a note), ``completed_at`` and ``feedback``.

Deliberate deviations:
- Structured errors are never re-mapped; crm.tag_activity's tag text rules fail with VALIDATION_ERROR naming
  the field, not INTERNAL_ERROR.
- ``project`` note targets are accepted by the schema but always NOT_FOUND "Project not found": this back end
  has no projects yet.
- A no-op (crm.update_activity_status, crm.complete_activity) still leaves an audit row saying ``no_op``:
  the runtime audits every side-effectful invocation.
- crm.tag_activity's ``{target}:update`` and ``tag:create`` depend on what the database holds, so the
  handler checks them: a denial there writes nothing but the FAILED ledger row of the attempt.
- A note on a contact without a client is refused ("Contact must be assigned to a client before logging
  interactions"), like every interaction this back end logs.
- Names are compared by ``name_key`` (docs/decisions.md, "One key per unique name"): crm.create_interaction_type
  finds a type by it (the reference: trimmed, whitespace collapsed, lower-cased), crm.update_activity_status a
  status by name, and crm.tag_activity deduplicates its texts by it (the reference: exactly).
"""

from __future__ import annotations

from psa.automation.actions.crm import activities, interaction_types, notes, tagging
from psa.automation.registry import ActionDef

actions: tuple[ActionDef, ...] = (
    notes.create_activity_note,
    activities.find_activities,
    activities.update_activity,
    activities.schedule_activity,
    interaction_types.create_interaction_type,
    activities.update_activity_status,
    tagging.tag_activity,
    activities.complete_activity,
)
"""The 8 crm.* activity actions in catalog order: the reference's 7 in its order, then crm.complete_activity."""
