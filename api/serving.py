"""How uvicorn serves the app: the one place that decides whose forwarded headers count."""

import uvicorn
from fastapi import FastAPI

from config import Settings

# How long an idle keep-alive connection stays open. Longer than clients and proxies keep theirs
# (httpx 5 s, load balancers commonly 60 s): at uvicorn's default of 5 s the server closes a
# connection just as a pooled client sends its next request on it, and a POST such as a trigger
# fails with a dropped connection instead of an answer.
KEEP_ALIVE_SECONDS = 75


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
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        **options,
    )
