"""Registered actions, one module per area. ``register_all`` adds every module's actions to a registry."""

from __future__ import annotations

from psa.automation.registry import ActionRegistry


def register_all(registry: ActionRegistry) -> ActionRegistry:
    """Register every built-in action module on ``registry`` (in catalog order) and return it."""
    from psa.automation.actions import clients, contacts, crm, quotes

    clients.register(registry)
    contacts.register(registry)
    crm.register(registry)
    quotes.register(registry)
    return registry
