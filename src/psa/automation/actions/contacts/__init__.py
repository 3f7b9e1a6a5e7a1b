"""The ``contacts.*`` workflow actions (reference: the contacts actions; issue 5; docs/automation.md, "Action
contract"; the catalog is docs/actions.md): the reference's 13 actions plus ``contacts.upsert`` and
``contacts.remove_tag``. The modules follow the tests: ``lookup`` (find, search), ``mutations`` (create,
update, deactivate, delete, duplicate, upsert) and ``relations`` (tags, ticket, note, interaction, client), with
the shared shapes in ``models``; :data:`actions` lists them in catalog order. Their events are types of
``psa.automation.events``.

Each action is version 1 in category "Business Operations", with pydantic input and output models, the
permissions it needs (checked by the runtime before the handler, in order), an idempotency mode (``engine``:
the runtime's key; ``action``: the input's ``idempotency_key`` when given) and a handler that calls the shared
domain models (``psa.domain.*``) inside the runtime's tenant transaction, so the handler's writes, its audit row
(``ctx.audit``), the ledger row and the outbox events (``ctx.emit``) commit together or not at all. Event keys
carry ISO-8601 UTC timestamps (docs/automation.md, "Events").

Input follows zod's semantics (docs/automation.md, "Action contract"): unknown keys are ignored, defaults are
applied, and where a key being absent differs from it being null (``contacts.update``'s patch,
``contacts.duplicate``'s ``target_client_id`` / ``role`` / ``notes``, ``contacts.move_to_client``'s guard,
``contacts.upsert``) the handler looks at ``model_fields_set``. Malformed emails and phone numbers fail in the
input model, naming the field, before anything is written (not even a ledger row).

Deviations from the reference, each deliberate:
- ``contacts.find`` by phone and ``contacts.search`` match ``contact_phone_numbers`` (the reference queried a
  column that no longer exists). Stored numbers are E.164, so an exact lookup also tries the E.164 digits
  of the given number ("415-555-0100" finds +14155550100).
- ``contacts.search`` has an ``is_inactive`` filter (absent: both, as in the reference) and never repeats a
  contact; its total counts distinct contacts.
- ``contacts.delete`` does not count the contact's own notes document as a dependency, and counts the
  quotes naming the contact (their foreign key would otherwise refuse the delete).
- ``contacts.add_interaction`` checks the interaction type too, and its INTERACTION_LOGGED event names the type
  (as ``clients.add_interaction`` does).
- ``contacts.update`` reports CONTACT_UPDATED diffs of every field that really changed (phone and additional
  email rows compared without their row ids, which a replacement renews).
"""

from __future__ import annotations

from psa.automation.actions.contacts import lookup, mutations, relations
from psa.automation.registry import ActionDef

actions: tuple[ActionDef, ...] = (
    lookup.find,
    lookup.search,
    mutations.create,
    mutations.update,
    mutations.deactivate,
    mutations.delete,
    mutations.duplicate,
    relations.add_tag,
    relations.assign_to_ticket,
    relations.add_note,
    relations.add_interaction,
    relations.add_to_client,
    relations.move_to_client,
    mutations.upsert,
    relations.remove_tag,
)
"""The 15 contacts.* actions in catalog order: the reference's 13 in its order, then the two beyond it."""
