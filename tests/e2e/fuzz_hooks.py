"""Schemathesis hooks of the fuzz run (tests/e2e/test_fuzz.py; its CLI loads this module).

The password policy has rules a JSON Schema cannot state: not only letters nor only digits (in
Unicode's sense of both), and not the part of the email before the @. The document states the
lengths and describes the rest. A generated password of an allowed length that breaks one of those
rules would rightly get 422 weak-password although the schema calls it valid, so before it is sent
it is replaced by one of the same length that keeps them. Every other generated body is sent as it
is: passwords of a wrong length still test the refusal.
"""

from __future__ import annotations

from typing import Any

import schemathesis

from amazonlite.services.auth.passwords import policy_violation
from amazonlite.services.auth.schemas import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH

NEW_PASSWORD_PATHS = frozenset({"/api/v1/auth/signup", "/api/v1/auth/password/reset"})
STRONG = ("Pw-1" * PASSWORD_MAX_LENGTH, "Zq+9" * PASSWORD_MAX_LENGTH)  # one of them avoids any email's name part


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: schemathesis.Case, kwargs: dict[str, Any]) -> None:
    body = case.body
    if context.operation is None or context.operation.path not in NEW_PASSWORD_PATHS or not isinstance(body, dict):
        return
    password, email = body.get("password"), body.get("email", "")
    if not (isinstance(password, str) and isinstance(email, str)
            and PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH):
        return
    if policy_violation(password, email) is not None:
        body["password"] = next(p[:len(password)] for p in STRONG if policy_violation(p[:len(password)], email) is None)
