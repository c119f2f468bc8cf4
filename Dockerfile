# spillover serve: the pre-blacklist check API (docs/service.md).
#   docker compose up -d --wait      # Neo4j and this service (docker-compose.yml)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[serve]" \
 && useradd --system --uid 10001 --home-dir /var/lib/spillover --create-home spillover \
 && install -d -o spillover -g spillover /var/lib/spillover/checks
USER spillover
WORKDIR /var/lib/spillover
EXPOSE 8000
# SIGTERM (docker stop): uvicorn stops taking connections, answers what is in flight
# (--graceful-seconds), closes the graph, exits
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]
ENTRYPOINT ["spillover", "serve", "--host", "0.0.0.0", "--port", "8000"]
CMD ["--check-log", "/var/lib/spillover/checks/checks.jsonl"]
