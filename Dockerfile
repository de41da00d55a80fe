# omnirelay: the wheel built from this tree on python:3.11-slim, run by a non-root user.
# Production by default (OMNIRELAY_SANDBOX=false): set OMNIRELAY_OPERATOR_TOKEN and, for several
# nodes, OMNIRELAY_DATABASE_URL (compose.yaml). Not built on the project's own machines, which
# have no Docker engine (README, "In a container").

FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir uv
COPY pyproject.toml uv.lock README.md ./
COPY src ./src
# The wheel, and the locked versions of its dependencies
RUN uv build --wheel --out-dir /dist \
 && uv export --frozen --no-dev --no-emit-project --no-hashes -o /dist/requirements.txt

FROM python:3.11-slim
COPY --from=build /dist /dist
RUN pip install --no-cache-dir -r /dist/requirements.txt /dist/omnirelay-*.whl \
 && rm -rf /dist \
 && useradd --system --uid 10001 --home-dir /var/lib/omnirelay --create-home omnirelay
USER omnirelay
WORKDIR /var/lib/omnirelay
ENV OMNIRELAY_HOST=0.0.0.0 \
    OMNIRELAY_PORT=8080 \
    OMNIRELAY_DATA_DIR=/var/lib/omnirelay \
    OMNIRELAY_SANDBOX=false \
    PYTHONUNBUFFERED=1
VOLUME /var/lib/omnirelay
EXPOSE 8080
# No curl in the slim image: the check is Python's own HTTP client.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('OMNIRELAY_PORT', '8080')}/health\", timeout=2)"]
ENTRYPOINT ["omnirelay"]
CMD ["serve"]
