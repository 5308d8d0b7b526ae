# Three images from one file (demo, lab, pim), each picked by docker-compose.yml with `target:`.
# The slim Debian (bookworm) Python image keeps bash, for `docker exec -it ... bash`.

# ---- demo: the four scripts, nothing else ----
FROM python:3.12-slim-bookworm AS demo

# Print each line at once (docker-compose logs -f) and write no .pyc files,
# so the scripts also run on a read-only root filesystem.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# A fixed unprivileged user: multicast needs no root, only a UDP socket.
RUN groupadd --system --gid 10001 multicast \
 && useradd --system --uid 10001 --gid multicast --home-dir /app --no-create-home \
            --shell /bin/bash multicast

WORKDIR /app
# .dockerignore lets in only the scripts.
COPY *.py ./
USER multicast:multicast

# The receiver by default; docker-compose.yml runs the sender with `command:`.
CMD ["python3", "multicast_receiver.py"]

# ---- lab: the demo plus a multicast router (smcroute) and a packet watcher (tcpdump) ----
FROM demo AS lab
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends smcroute tcpdump iproute2 \
 && rm -rf /var/lib/apt/lists/*
COPY lab/ /lab/
CMD ["sh", "/lab/router.sh"]

# ---- pim: the lab plus FRR, whose zebra, staticd and pimd make a PIM-SM router ----
FROM lab AS pim
RUN apt-get update \
 && apt-get install -y --no-install-recommends frr \
 && rm -rf /var/lib/apt/lists/* \
 && usermod --append --groups frrvty root
# The daemons stay root (see lab/pim-router.sh), and FRR wants its vty group.
CMD ["sh", "/lab/pim-router.sh", "1"]
