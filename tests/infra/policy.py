"""A small evaluator of a synthesized resource policy's statements, one by one (emulated IAM).

It is not AWS's policy engine: it answers "does some Deny statement of this policy match this request?"
(``denying_statements``) and "does some Allow statement match it?" (``allowing_statements``; ``allows``: an
Allow matches and no Deny does), for the shapes our templates use. CloudFormation intrinsics are resolved to
placeholders (``{"Fn::GetAtt": ["Role", "Arn"]}`` -> ``"<Role.Arn>"``), and requests use the same placeholders.
Semantics follow the IAM documentation: wildcards in actions/resources/ARNs; a missing condition key makes
a condition false, except for ``Null`` (which tests presence) and negated operators (``...Not...``),
which are true when the key is absent.
"""

from __future__ import annotations

import operator as op
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any


def resolve(value: Any) -> Any:
    """Replace CloudFormation intrinsics by readable placeholders."""
    if isinstance(value, dict) and len(value) == 1:
        ((name, arg),) = value.items()
        if name == "Fn::GetAtt":
            return f"<{arg[0]}.{arg[1]}>"
        if name == "Ref":
            return f"<{arg}>"
        if name == "Fn::Join":
            sep, parts = arg
            return sep.join(str(resolve(p)) for p in parts)
    if isinstance(value, dict):
        return {k: resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v) for v in value]
    return value


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Request:
    principal_arn: str  # the caller; for a service principal's request, the service name (e.g. "sns.amazonaws.com")
    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)  # condition keys present in the request
    service: bool = False  # the caller is an AWS service principal (``principal_arn`` is its name)


def _condition_true(operator: str, key: str, expected: list[str], context: Mapping[str, str]) -> bool:
    present = key in context
    if operator == "Null":
        return (not present) == (str(expected[0]).lower() == "true")
    negated = "Not" in operator
    if not present:
        return negated
    actual = context[key]
    if operator.startswith("Numeric"):
        number, limits = float(actual), [float(e) for e in expected]
        compare = {
            "NumericLessThan": op.lt,
            "NumericLessThanEquals": op.le,
            "NumericGreaterThan": op.gt,
            "NumericGreaterThanEquals": op.ge,
            "NumericEquals": op.eq,
        }[operator]
        return any(compare(number, limit) for limit in limits)
    if operator == "Bool":
        return any(str(actual).lower() == str(e).lower() for e in expected)
    if operator in ("StringEquals", "StringNotEquals"):
        match = any(actual == e for e in expected)
    elif operator in ("StringLike", "StringNotLike", "ArnEquals", "ArnNotEquals", "ArnLike", "ArnNotLike"):
        match = any(fnmatchcase(actual, e) for e in expected)
    else:
        raise NotImplementedError(f"condition operator {operator} is not emulated")
    return not match if negated else match


def _principal_matches(principal: Any, request: Request) -> bool:
    if principal in ("*", {"AWS": "*"}):
        return True
    if not isinstance(principal, dict) or set(principal) - {"AWS", "Service"}:
        raise NotImplementedError(f"principal {principal!r} is not emulated")
    key = "Service" if request.service else "AWS"
    return any(fnmatchcase(request.principal_arn, p) for p in _as_list(principal.get(key, [])))


def _statement_matches(statement: Mapping[str, Any], request: Request) -> bool:
    if not _principal_matches(statement.get("Principal"), request):
        return False
    if not any(fnmatchcase(request.action, a) for a in _as_list(statement["Action"])):
        return False
    if "Resource" in statement and not any(fnmatchcase(request.resource, r) for r in _as_list(statement["Resource"])):
        return False
    if "NotResource" in statement and any(fnmatchcase(request.resource, r) for r in _as_list(statement["NotResource"])):
        return False
    context = (
        dict(request.context) if request.service else {"aws:PrincipalArn": request.principal_arn, **request.context}
    )
    for operator, keys in statement.get("Condition", {}).items():
        for key, expected in keys.items():
            if not _condition_true(operator, key, [str(e) for e in _as_list(expected)], context):
                return False
    return True


def denying_statements(policy_document: Mapping[str, Any], request: Request) -> list[str]:
    """Sids (or indexes) of the Deny statements that match ``request``; empty means "not denied by this policy"."""
    document = resolve(policy_document)
    return [
        statement.get("Sid", str(index))
        for index, statement in enumerate(document["Statement"])
        if statement["Effect"] == "Deny" and _statement_matches(statement, request)
    ]


def allowing_statements(policy_document: Mapping[str, Any], request: Request) -> list[str]:
    """Sids (or indexes) of the Allow statements that match ``request``."""
    document = resolve(policy_document)
    return [
        statement.get("Sid", str(index))
        for index, statement in enumerate(document["Statement"])
        if statement["Effect"] == "Allow" and _statement_matches(statement, request)
    ]


def allows(policy_document: Mapping[str, Any], request: Request) -> bool:
    """Some Allow statement matches ``request`` and no Deny statement does."""
    return bool(allowing_statements(policy_document, request)) and not denying_statements(policy_document, request)


def identity_allows(statements: list[Mapping[str, Any]], request: Request) -> bool:
    """An identity policy's statements (no ``Principal``: they speak for the role they are attached to) allow
    ``request`` made by that role: some Allow matches and no Deny does."""
    document = {"Statement": [{**statement, "Principal": "*"} for statement in statements]}
    return allows(document, request)
