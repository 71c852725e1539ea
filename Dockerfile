# One image for both halves of picket:
#   picket operator   (the kopf operator; Deployment in manifests/operator-deployment.yaml)
#   picket agent      (the node agent; DaemonSet in manifests/agent-daemonset.yaml)
# Build and load into kind:  docker build -t picket:dev . && kind load docker-image picket:dev --name picket
FROM python:3.11-slim

# The agent's dataplane tools: iptables (both legacy and nft variants ship in Debian's package),
# ipset, conntrack (flushing entries of connections a new policy denies), kmod for modprobe.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iptables ipset conntrack kmod \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY picket ./picket
COPY operator ./operator
COPY agent ./agent
RUN pip install --no-cache-dir --root-user-action=ignore . && rm -rf /src

WORKDIR /
ENV PYTHONUNBUFFERED=1
ENTRYPOINT ["picket"]
CMD ["--help"]
