"""The domain event types (psa.automation.events): every event an action emits is a registered type with a key,
and the payload rules every event shares."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import uuid
from datetime import UTC, datetime

import pytest

import psa.automation.actions
from psa.automation import events
from psa.automation.events import EVENT_TYPES, ClientArchived, ContactCreated, Event, InteractionLogged

NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def action_modules() -> list:
    package = psa.automation.actions
    names = [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    return [importlib.import_module(name) for name in [package.__name__, *names]]


def emitted_event_classes(module) -> set[type]:
    """The classes of the events a module hands to ``ctx.emit``: ``ctx.emit(X(...))``, ``ctx.emit(X.of(...))``,
    or ``ctx.emit(name)`` where ``name = X.of(...)`` / ``X(...)`` in the same function."""

    def built_class(node: ast.expr) -> str:
        assert isinstance(node, ast.Call), ast.unparse(node)
        func = node.func
        if isinstance(func, ast.Attribute):  # X.of(...)
            func = func.value
        assert isinstance(func, ast.Name), ast.unparse(node)
        return func.id

    found: set[type] = set()
    tree = ast.parse(inspect.getsource(module))
    for function in ast.walk(tree):
        if not isinstance(function, ast.AsyncFunctionDef | ast.FunctionDef):
            continue
        assigned = {
            target.id: node.value
            for node in ast.walk(function)
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(function):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "emit":
                [argument] = node.args
                built = assigned[argument.id] if isinstance(argument, ast.Name) else argument
                found.add(getattr(module, built_class(built)))
    return found


def test_every_event_an_action_emits_is_a_registered_type():
    emitted = set().union(*(emitted_event_classes(module) for module in action_modules()))
    assert emitted, "no ctx.emit call found"
    unregistered = {cls.__name__ for cls in emitted if cls not in EVENT_TYPES.values()}
    assert unregistered == set()
    assert {cls.event_type for cls in emitted} == set(EVENT_TYPES)  # and every registered type is emitted


def test_every_event_type_is_registered_under_its_name_with_a_key():
    defined = {
        cls for _, cls in inspect.getmembers(events, inspect.isclass) if issubclass(cls, Event) and cls is not Event
    }
    assert defined == set(EVENT_TYPES.values())
    for event_type, cls in EVENT_TYPES.items():
        assert cls.event_type == event_type
        assert event_type.isupper()
        assert not inspect.isabstract(cls), f"{cls.__name__} has no key()"
        assert cls.key is not Event.key


def test_payload_is_camel_case_without_empty_values():
    client_id, actor = uuid.uuid4(), uuid.uuid4()
    event = ClientArchived(client_id=client_id, archived_by_user_id=actor, archived_at=NOW, reason="")
    assert event.payload() == {
        "clientId": str(client_id),
        "archivedByUserId": str(actor),
        "archivedAt": "2026-01-05T09:30:00.000000Z",
    }
    assert event.key() == f"client_archived:{client_id}:2026-01-05T09:30:00.000000Z"
    assert event.occurred_at() is None  # occurs when emitted


@pytest.mark.parametrize("canonical_type", [None, "work"])
def test_contact_created_always_carries_the_primary_email_type(canonical_type):
    contact_id, actor = uuid.uuid4(), uuid.uuid4()
    event = ContactCreated(
        contact_id=contact_id,
        client_id=None,
        full_name="Ada",
        email="ada@example.com",
        primary_email_canonical_type=canonical_type,
        primary_email_custom_type_id=None,
        primary_email_custom_type=None,
        primary_email_type="",
        additional_email_addresses=[],
        phone_numbers=[],
        default_phone_number=None,
        default_phone_type=None,
        created_by_user_id=actor,
        created_at=NOW,
    )
    assert event.payload() == {
        "contactId": str(contact_id),
        "fullName": "Ada",
        "email": "ada@example.com",
        "primaryEmailCanonicalType": canonical_type,
        "createdByUserId": str(actor),
        "createdAt": "2026-01-05T09:30:00.000000Z",
    }
    assert event.occurred_at() == NOW


def test_interaction_logged_derives_channel_and_omits_what_it_lacks():
    assert events.interaction_channel(" Phone Call ") == "phone"
    assert events.interaction_channel("Lunch meeting") == "meeting"
    assert events.interaction_channel(None) == "other"
    assert events.body_preview("  a \n  b ") == "a b"
    assert events.body_preview("x" * 201) == "x" * 200 + "…"
    event = InteractionLogged(
        interaction_id=uuid.uuid4(),
        client_id=None,
        contact_id=None,
        interaction_type="Call",
        interaction_type_id=uuid.uuid4(),
        channel="phone",
        interaction_occurred_at=NOW,
        logged_by_user_id=uuid.uuid4(),
        subject=None,
        outcome="0",
    )
    assert "clientId" not in event.payload()
    assert "subject" not in event.payload()
    assert event.payload()["outcome"] == "0"
    assert event.key() == f"interaction_logged:{event.interaction_id}"
