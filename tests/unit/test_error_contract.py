"""The error contract: one conversion from domain errors to action errors (psa.automation.errors.from_domain),
by code and the error's own data, and one mapping from action error codes to HTTP problems (psa.api.problem)."""

from __future__ import annotations

import json

import pytest

from psa.api.problem import STATUS_BY_CODE, domain_error_response
from psa.automation.definitions import DefinitionInvalid, ValidationIssue, ValidationReport
from psa.automation.errors import ACTION_CODE_BY_DOMAIN_CODE, from_domain
from psa.domain.errors import (
    ConflictError,
    DependencyConflict,
    DomainError,
    DuplicateError,
    EmailExistsError,
    InternalError,
    NotFoundError,
    PermissionDenied,
    ValidationError,
)


@pytest.mark.parametrize(
    ("error", "category", "code", "status"),
    [
        (ValidationError("bad"), "ValidationError", "VALIDATION_ERROR", 422),
        (NotFoundError("gone"), "ActionError", "NOT_FOUND", 404),
        (ConflictError("taken"), "ActionError", "CONFLICT", 409),
        (DuplicateError("twice"), "ActionError", "CONFLICT", 409),
        (EmailExistsError("email: used", field="email"), "ActionError", "CONFLICT", 409),
        (PermissionDenied("client", "read"), "ActionError", "PERMISSION_DENIED", 403),
        (InternalError("broken"), "ActionError", "INTERNAL_ERROR", 500),
        (DomainError("unclassified"), "ValidationError", "VALIDATION_ERROR", 422),
    ],
)
def test_a_domain_error_converts_by_its_code_at_both_boundaries(error, category, code, status):
    info = from_domain(error).info
    assert (info.category, info.code, info.message) == (category, code, error.message)
    response = domain_error_response(error)
    body = json.loads(response.body)
    assert response.status_code == status == STATUS_BY_CODE[code]
    assert (body["code"], body["category"], body["detail"]) == (code, category, error.message)


def test_every_domain_code_maps_to_an_action_code_with_a_status():
    for domain_code, action_code in ACTION_CODE_BY_DOMAIN_CODE.items():
        assert action_code in STATUS_BY_CODE, domain_code


def test_details_carry_the_field_and_the_errors_own_data():
    assert from_domain(NotFoundError("Client not found")).info.details is None
    located = from_domain(NotFoundError("Client not found", field="client_id")).info
    assert located.details == {"field": "client_id", "fields": [{"path": "client_id", "message": "Client not found"}]}
    cited = from_domain(NotFoundError("Quote not found", details={"quote_id": "q1"})).info
    assert cited.details == {"quote_id": "q1"}
    both = from_domain(ValidationError("no match", field="expected", details={"contact_id": "c1"})).info
    assert both.details == {
        "contact_id": "c1",
        "field": "expected",
        "fields": [{"path": "expected", "message": "no match"}],
    }


def test_a_taken_contact_email_names_its_field_without_the_prefix():
    error = EmailExistsError("email: A contact with email a@b.co already exists in the tenant", field="email")
    info = from_domain(error).info
    assert info.message == error.message
    assert info.details == {
        "field": "email",
        "fields": [{"path": "email", "message": "A contact with email a@b.co already exists in the tenant"}],
    }


def test_permission_denied_and_dependency_conflict_carry_their_data():
    assert from_domain(PermissionDenied("tag", "create")).info.details == {"resource": "tag", "action": "create"}
    conflict = DependencyConflict.of_counts(
        "client",
        {"ticket": 2, "interaction": 1},
        {"ticket": ("ticket", "tickets"), "interaction": ("interaction", "interactions")},
        {"ticket": "/msp/tickets?client_id=c1"},
    )
    info = from_domain(conflict).info
    assert (info.code, info.message) == (
        "CONFLICT",
        "This client has associated records that must be removed or reassigned first: 2 tickets, 1 interaction",
    )
    assert info.details["dependencies"] == [
        {"type": "ticket", "count": 2, "label": "tickets", "viewUrl": "/msp/tickets?client_id=c1"},
        {"type": "interaction", "count": 1, "label": "interaction"},
    ]
    assert [a["action"] for a in info.details["alternatives"]] == ["deactivate"]


def test_a_rejected_definition_lists_its_publish_issues_as_problem_errors():
    issue = ValidationIssue(severity="error", code="UNKNOWN_NODE_TYPE", step_path="root.steps[0]", message="nope")
    error = DefinitionInvalid(ValidationReport(errors=[issue]))
    response = domain_error_response(error)
    body = json.loads(response.body)
    assert (response.status_code, body["code"]) == (422, "VALIDATION_ERROR")
    assert body["errors"] == [{"path": "root.steps[0]", "message": "nope", "code": "UNKNOWN_NODE_TYPE", "in": "body"}]


def test_temporal_details_carry_details_only_when_there_are_some():
    assert NotFoundError("gone", field="x").to_dict() == {"code": "NOT_FOUND", "message": "gone", "field": "x"}
    assert PermissionDenied("a", "b").to_dict()["details"] == {"resource": "a", "action": "b"}
