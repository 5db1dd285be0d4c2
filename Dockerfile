# syntax=docker/dockerfile:1
# The pingjia service: HTTP (8080), FastAGI for Asterisk (4573) and the scheduler in one
# process (`pingjia serve`). See deploy/README.md and docker-compose.yml for the full stack.

# Stage 1: the wheel, built from the whole build context (.dockerignore keeps out .venv, .git
# and local databases). pyproject.toml says which packages and data files it holds (prompts,
# built audio, templates, profiles, migrations), so no list of folders here can drift from it;
# tests/test_wheel.py installs the same wheel outside the source tree and serves a call.
FROM python:3.11-slim-bookworm AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY . .
RUN pip wheel --no-deps --wheel-dir /wheels .

# Stage 2: the service, with the wheel installed as any site would install it.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Tools for building the voice prompts: text to speech, resampling to 8 kHz for telephony.
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng sox ffmpeg \
    && rm -rf /var/lib/apt/lists/*

# The service never runs as root.
RUN groupadd --system pingjia \
    && useradd --system --gid pingjia --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin pingjia

# Install the wheel (not editable) with its dependencies; the wheel is bind-mounted from the
# first stage, so it leaves no layer behind.
RUN --mount=type=bind,from=wheel,source=/wheels,target=/wheels \
    pip install /wheels/*.whl

# Working directory and data directory belong to the service user. A named volume mounted
# on /app/pingjia-data starts out with this ownership.
RUN mkdir -p /app/pingjia-data && chown -R pingjia:pingjia /app
WORKDIR /app

# Listen on every interface inside the container (the default outside is 127.0.0.1).
ENV PINGJIA_BIND=0.0.0.0 \
    PINGJIA_DATA_DIR=/app/pingjia-data

USER pingjia

# 8080: HTTP API, rating pages, webhooks, /healthz, /metrics. 4573: FastAGI.
EXPOSE 8080 4573

# slim images have no curl: ask /healthz with the standard library (urlopen raises on
# anything but 2xx, which makes the exit status non-zero).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PINGJIA_HTTP_PORT', '8080') + '/healthz', timeout=4)"]

CMD ["pingjia", "serve"]
