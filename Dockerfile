# One image for every component (webhook, sidecar, controller): `muster-exchange <subcommand>`.
# Static musl binary on a distroless base, numeric non-root user, so the injected sidecar passes the
# `restricted` Pod Security Standard with a read-only root filesystem.
#
# Multi-arch: docker buildx build --platform linux/amd64,linux/arm64 -t IMAGE --push .
# buildx sets TARGETARCH per platform; it selects the matching musl target. Each platform's build stage
# runs on that platform (natively, or under QEMU emulation where buildx has it registered), so the C parts
# of the dependencies (ring) compile with that platform's own musl-gcc.
FROM rust:1.95-bookworm AS build
ARG TARGETARCH
RUN case "${TARGETARCH:-amd64}" in \
      amd64) echo x86_64-unknown-linux-musl ;; \
      arm64) echo aarch64-unknown-linux-musl ;; \
      *) echo "unsupported TARGETARCH ${TARGETARCH}: build for linux/amd64 or linux/arm64" >&2; exit 1 ;; \
    esac > /rust-target \
 && rustup target add "$(cat /rust-target)" \
 && apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN target="$(cat /rust-target)" \
 && cargo build --release --locked --target "$target" -p muster-exchange \
 && cp "target/$target/release/muster-exchange" /muster-exchange

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /muster-exchange /usr/local/bin/muster-exchange
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/muster-exchange"]
