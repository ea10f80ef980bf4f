"""Refusals: what the rules say no to, with the status and problem type the API answers with.

Services raise them; the API turns them into RFC 9457 problem details (``api/problems.py``).
"""


class Problem(Exception):
    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail, self.errors = (
            status,
            slug,
            title,
            detail,
            errors,
        )


def not_found(what: str, ident: str) -> Problem:
    return Problem(404, "not-found", f"{what} not found", f"No {what.lower()} with id {ident!r}.")


def invalid(field: str, message: str) -> Problem:
    return Problem(
        422, "validation-error", "Invalid request", message, [{"field": field, "message": message}]
    )
