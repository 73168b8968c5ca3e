FROM python:3.11-slim
# A user of its own, never root: syncs run tenants' sources as child processes of this user.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin syncjobs
# Connector binaries for `command` data sources go in /opt/connectors (a data source names them by absolute
# path in `argv`): COPY them in a derived image, or mount them read-only. Keep them owned by root, so the
# syncjobs user can run them but not change them.
RUN mkdir -p /opt/connectors
WORKDIR /app
COPY pyproject.toml README.md ./
COPY models models
COPY api api
COPY worker worker
COPY executor executor
COPY syncjobs syncjobs
RUN pip install --no-cache-dir .
USER syncjobs
# 8080: the API. 9100: a worker's status port (/healthz, /readyz, /metrics).
EXPOSE 8080 9100
