# Latent lab: the Streamlit app over the PyTorch core, serving on port 8501.
#   docker build -t latent-lab .
#   docker run -p 8501:8501 -v latent-runs:/app/runs latent-lab              # CPU
#   docker run --gpus all -p 8501:8501 -v latent-runs:/app/runs latent-lab   # NVIDIA GPU
#   docker build --build-arg WITH_RAY=1 -t latent-lab-ray .                   # with Ray
# torch 2.14.1 from PyPI is a CUDA build: it uses the GPU when the container gets one
# (--gpus all, NVIDIA container toolkit) and runs on the CPU otherwise.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LATENTLAB_RUNS_DIR=/app/runs \
    LATENTLAB_DATA_DIR=/app/data \
    STREAMLIT_SERVER_ADDRESS=0.0.0.0 \
    STREAMLIT_SERVER_PORT=8501 \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

# curl for the health check; Debian's Fashion-MNIST so the image trains offline.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl dataset-fashion-mnist \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# --build-arg WITH_RAY=1 adds the optional Ray extra (README "On a Ray cluster"): the same
# image then serves the app with LATENTLAB_RAY_ADDRESS set, and runs as a Ray node
ARG WITH_RAY=0
COPY requirements.txt requirements-ray.txt ./
RUN pip install --no-cache-dir -r requirements.txt \
    && if [ "$WITH_RAY" = "1" ]; then pip install --no-cache-dir -r requirements-ray.txt; fi

COPY pyproject.toml ./
COPY core/ core/
COPY app/ app/
COPY pages/ pages/
COPY .streamlit/ .streamlit/
COPY pretrained/ pretrained/
RUN pip install --no-cache-dir --no-deps -e .

RUN useradd --create-home --uid 10001 lab \
    && mkdir -p /app/runs /app/data \
    && chown -R lab:lab /app/runs /app/data
USER 10001

VOLUME ["/app/runs"]
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["curl", "-fsS", "http://localhost:8501/_stcore/health"]

CMD ["streamlit", "run", "app/main.py"]
