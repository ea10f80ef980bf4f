"""Absolute links in responses, built on the configured public URL (``TOLLGATE_PUBLIC_URL``).

Never from the request's Host header, which any client can set to point others elsewhere.
"""

from fastapi import Request

from config import Settings


def link(request: Request, route_name: str, **params: str) -> str:
    """The absolute URL of the named route with these path parameters."""
    settings: Settings = request.app.state.settings
    return settings.public_url + str(request.app.url_path_for(route_name, **params))
