"""The 11 ``clients.*`` workflow actions (reference: the clients actions; docs/automation.md, "Action contract";
the catalog is docs/actions.md). The modules are laid out as ``actions/contacts``: ``lookup`` (find, search),
``mutations`` (create, update, archive, delete, duplicate) and ``relations`` (tag, ticket, note, interaction),
with the shared shapes in ``models``; :data:`actions` lists them in catalog order. Their events are types of
``psa.automation.events``.

Each action is version 1 in category "Business Operations", with pydantic input and output models, the
permissions it needs (checked by the runtime before the handler, in order), an idempotency mode (``engine``:
the runtime's key; ``action``: the input's ``idempotency_key`` when given) and a handler that calls the
domain models (``psa.domain.*``) inside the runtime's tenant transaction. The rules are the domain's; it and
the handlers raise domain errors, which the runtime converts (docs/architecture.md, "Error contract").
Side-effectful handlers hand the runtime their audit ``changed_data`` and ``details`` (``ctx.audit``) and queue
domain events in the transactional outbox (``ctx.emit``) with deterministic keys whose timestamps are ISO-8601
UTC (``...Z``, microseconds), never a locale date string (docs/automation.md, "Events").

Input follows zod's semantics (docs/automation.md, "Action contract"): unknown keys are ignored, defaults are
applied, and where a key being absent differs from it being null (``clients.update``'s patch,
``clients.assign_to_ticket``'s ``contact_id`` / ``location_id``) the handler looks at ``model_fields_set``. Every
rule that needs no database is checked by the model, so a bad input fails with VALIDATION_ERROR naming the field
path before anything is written (not even a ledger row).

Deviations from the reference, each deliberate:
- ``clients.search`` never repeats a client when several tag filters match.
- ``clients.delete`` also counts documents associated as ``client`` (other than the client's own notes
  document) as dependencies; the reference counted only ``company`` ones and would have deleted them.
- ``clients.add_interaction`` checks the interaction type and status (the domain model does) and its
  INTERACTION_LOGGED event names the type (``interactionType`` = type name, channel derived from it, plus
  ``interactionTypeId``) instead of carrying the raw id with channel ``other``.
- ``parent_client_id`` / ``contract_line_id`` / ``is_default`` are accepted but not stored: our ``clients``
  table has no such columns, and the reference writes a column only when it exists. A given non-null
  ``parent_client_id`` must still name a client of the tenant (NOT_FOUND).
- ``client_type``, ``default_currency_code`` and ``client_name`` may be omitted from a patch but not set to
  null: their columns are NOT NULL.
- Tag texts follow the shared tag rules (at most 50 characters, the reference charset).
- Client names and tag texts are compared by ``name_key`` (docs/decisions.md, "One key per unique name"):
  client names are unique by it, so ``clients.create`` of "ACME" beside "Acme" is CONFLICT and ``clients.find``
  by name matches at most one client; tag filters and tags match by it too (the reference: exact text).
"""

from __future__ import annotations

from psa.automation.actions.clients import lookup, mutations, relations
from psa.automation.registry import ActionDef

actions: tuple[ActionDef, ...] = (
    lookup.find,
    lookup.search,
    mutations.create,
    mutations.update,
    mutations.archive,
    mutations.delete,
    mutations.duplicate,
    relations.add_tag,
    relations.assign_to_ticket,
    relations.add_note,
    relations.add_interaction,
)
"""The 11 clients.* actions in catalog order (the reference's order)."""
