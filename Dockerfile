# syntax=docker/dockerfile:1
# orderlift: `--target service` (the API, no MLflow UI) or `--target training` (jobs and the MLflow server).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
WORKDIR /src
RUN python -m venv /opt/venv
# Dependencies first, from pyproject.toml alone, so source edits do not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir features training service \
    && touch features/__init__.py training/__init__.py service/__init__.py \
    && pip install . \
    && pip uninstall --yes orderlift
COPY features ./features
COPY training ./training
COPY service ./service
# Compile the cart kernels into numba's cache beside the installed code (read-only at run time).
RUN pip install --no-deps . \
    && python -P -c "from training.models.cart_kernels import warm; warm()"

FROM build AS training-build
# The `train` extra of pyproject.toml (a test keeps the two equal).
COPY deploy/requirements-train.txt ./
RUN pip install --requirement requirements-train.txt

FROM python:3.11-slim AS base
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 OPENBLAS_NUM_THREADS=1 \
    MLFLOW_TRACKING_URI=http://mlflow:5000 ORDERLIFT_EVENT_LOG=/data/events/events.jsonl
RUN useradd --create-home --uid 10001 orderlift \
    && mkdir -p /data/events /mlflow \
    && chown -R orderlift:orderlift /data /mlflow
WORKDIR /home/orderlift

FROM base AS training
COPY --from=training-build /opt/venv /opt/venv
USER 10001
ENTRYPOINT ["orderlift"]
CMD ["--help"]

FROM base AS service
COPY --from=build /opt/venv /opt/venv
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["orderlift", "serve", "--host", "0.0.0.0", "--port", "8000"]
