# One image for both halves of picket:
#   picket operator   (the kopf operator; Deployment in manifests/operator-deployment.yaml)
#   picket agent      (the node agent; DaemonSet in manifests/agent-daemonset.yaml)
# Build and load into kind:  docker build -t picket:dev . && kind load docker-image picket:dev --name picket
#
# Two stages: python-iptables is published as source only and needs a C compiler, which stays in the
# first stage; the image gets the wheels. Debian packages are installed only when the base lacks them,
# and pip reads its usual settings (PIP_INDEX_URL, or a base image's /etc/pip.conf), so a mirror or an
# offline build needs no change here: `--build-arg BASE_IMAGE=...` picks another base.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS wheels
ARG PIP_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_NO_INDEX
RUN missing=""; for p in gcc libc6-dev; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done; \
    if [ -n "$missing" ]; then \
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing \
      && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /src
COPY pyproject.toml README.md ./
COPY picket ./picket
COPY operator ./operator
COPY agent ./agent
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${BASE_IMAGE}
# The agent's dataplane tools: iptables (both legacy and nft variants ship in Debian's package),
# ipset, conntrack (flushing entries of connections a new policy denies), kmod for modprobe.
RUN missing=""; for p in iptables ipset conntrack kmod; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done; \
    if [ -n "$missing" ]; then \
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing \
      && rm -rf /var/lib/apt/lists/*; \
    fi
COPY --from=wheels /wheels /wheels
RUN pip install --no-cache-dir --no-index --root-user-action=ignore /wheels/*.whl && rm -rf /wheels

WORKDIR /
ENV PYTHONUNBUFFERED=1
ENTRYPOINT ["picket"]
CMD ["--help"]
