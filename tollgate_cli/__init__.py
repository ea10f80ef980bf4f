"""The operators' commands of ``tollgate`` (``runs``, ``audit``): clients of the HTTP API.

They read ``TOLLGATE_API_URL`` (default: the local API) and ``TOLLGATE_ADMIN_TOKEN`` (default:
the token ``tollgate dev`` keeps in the data folder), print rich tables, or JSON with ``--json``.
"""
