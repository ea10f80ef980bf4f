"""Who is asking: the identity a route resolved from a bearer token, as services see it."""

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Caller:
    kind: Literal["admin", "principal", "integration"]
    id: str
    engagement_id: str | None = None

    @property
    def actor(self) -> str:
        return {"admin": "admin", "principal": self.id}.get(self.kind, f"integration:{self.id}")
