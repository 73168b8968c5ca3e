FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY models models
COPY api api
COPY worker worker
COPY executor executor
COPY syncjobs syncjobs
RUN pip install --no-cache-dir .
USER nobody
