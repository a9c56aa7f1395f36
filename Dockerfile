# convene worker image: `docker build -t convene .` (deploy/compose.yaml builds it too).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
COPY prompts ./prompts
# Slack, Discord and the results chart; `convene[vault]` adds the HashiCorp Vault key store.
RUN pip install '.[slack,discord,charts]' && rm -rf /src

# Never root: a system user owning only its working directory (the round-key directory lives there
# when anonymity.backend is file; mount the same volume in every worker of one host).
RUN useradd --system --uid 10001 --home-dir /var/lib/convene --shell /usr/sbin/nologin convene \
    && mkdir -p /var/lib/convene/keys \
    && chown -R convene:convene /var/lib/convene \
    && chmod 700 /var/lib/convene/keys
USER convene
WORKDIR /var/lib/convene

EXPOSE 3000
ENTRYPOINT ["convene"]
CMD ["run", "--config", "/etc/convene/convene.yaml"]
