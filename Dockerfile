# One image for the API, the worker and the migrate job (the command picks the part).
# Built without the `dev` extra: no Temporal dev server or test server, no test tools.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/tollgate
WORKDIR /src
COPY . .
RUN /opt/tollgate/bin/pip install .

FROM python:3.11-slim
# WeasyPrint draws the PDFs (invoices, certificates) through Pango; DejaVu covers Latin, Greek and
# Cyrillic names. Unpinned: the versions are the base image's Debian release, whose security
# updates replace exact versions.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 tollgate \
    && useradd --system --uid 10001 --gid tollgate --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin tollgate
COPY --from=build /opt/tollgate /opt/tollgate
ENV PATH=/opt/tollgate/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TOLLGATE_API_HOST=0.0.0.0
WORKDIR /tmp
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 8000
CMD ["tollgate", "api"]
