"""Server-rendered pages for people (approvers), as opposed to the JSON API under ``/v1``."""
