"""The one base for refusals: "this is not allowed, because ...", said in words an officer can read.

A service raises a subclass of `Refusal` when a request breaks one of its rules (a campaign that is
not a draft, a notice period that cannot be met, a CSV that cannot be read). It is handled once for
pages (roll back, show the reason, back to the form: `mailer.web`) and once for the API
(problem+json with the field, if any: `mailer.api`). Nothing else catches it to mean "refused";
`ValueError` stays what Python means by it.
"""

from __future__ import annotations


class Refusal(Exception):
    """A request a rule does not allow. `reason` is shown as it is; `field` names the input at
    fault when there is one; `status` is the API's answer (409: the state does not allow it;
    422: the input cannot be taken)."""

    status = 409

    def __init__(self, reason: str = "", field: str | None = None):
        super().__init__(reason)
        self.reason, self.field = reason, field

    def field_errors(self) -> list[dict]:
        """The API's `errors` list: what is wrong, field by field."""
        return [{"field": self.field, "message": str(self)}]


class Invalid(Refusal):
    """Input that cannot be taken as it is (API: 422)."""

    status = 422
