# syntax=docker/dockerfile:1
#
# How your own service image takes vault-exec: build the `vault-exec` stage of
# deploy/ecs/Dockerfile once (a scratch image holding only /vault-exec), then
# copy it in. Your app keeps its own build; nothing of it enters this repository.
#
#   docker build -f deploy/ecs/Dockerfile --target vault-exec -t vault-exec:0.1 .
#   docker build -f Dockerfile.app --build-arg VAULT_EXEC_IMAGE=vault-exec:0.1 -t shop:dev .
#
# In ECS the task role finds the AppRole credentials Custom::VaultAuth delivered
# (VAULT_APPROLE_S3_BUCKET; see docs/approle.md), or set VAULT_AUTH_ROLE for AWS IAM.

ARG VAULT_EXEC_IMAGE=vault-exec:0.1
ARG DEBIAN_RELEASE=bookworm

FROM ${VAULT_EXEC_IMAGE} AS vault-exec

# Your app's own build stage would be here, e.g.
#   FROM golang:1.23 AS app
#   RUN go build -o /out/shop ./cmd/shop

FROM debian:${DEBIAN_RELEASE}-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app
COPY --from=vault-exec /vault-exec /usr/local/bin/vault-exec
# Your app: COPY --from=app /out/shop /usr/local/bin/shop
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/vault-exec", "--"]
CMD ["/usr/local/bin/shop"]
