"""How uvicorn serves the app: the one place that decides whose forwarded headers count."""

import uvicorn
from fastapi import FastAPI

from config import Settings


def server_config(
    app: FastAPI, settings: Settings, host: str, port: int, **options
) -> uvicorn.Config:
    """uvicorn reads ``X-Forwarded-For`` only from ``settings.trusted_proxies``; with none set it
    reads no forwarded header at all (its own default would believe any loopback caller)."""
    proxies = settings.trusted_proxies.strip()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
        **options,
    )
