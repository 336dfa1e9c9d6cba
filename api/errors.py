"""ApiError: a refusal with an HTTP status, the field it concerns and one line saying why (never a value of
personal data). The routes and the shared operations raise it; handlers.py renders it as
`{"error": {"field": ..., "message": ...}}`, and the CLI prints it as `field: message`."""

from __future__ import annotations

BAD_INPUT, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, CONFLICT, REFUSED, UNAVAILABLE = 400, 401, 403, 404, 409, 422, 503


class ApiError(ValueError):
    def __init__(self, status: int, field: str | None, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.status = status
        self.field = field
        self.message = message

    def body(self) -> dict[str, dict[str, str | None]]:
        return {"error": {"field": self.field, "message": self.message}}
