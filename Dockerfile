# One image for every component (webhook, sidecar, controller): `muster-exchange <subcommand>`.
# Static musl binary on a distroless base, numeric non-root user, so the injected sidecar passes the
# `restricted` Pod Security Standard with a read-only root filesystem.
FROM rust:1.95-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl && apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --target x86_64-unknown-linux-musl -p muster-exchange \
 && cp target/x86_64-unknown-linux-musl/release/muster-exchange /muster-exchange

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /muster-exchange /usr/local/bin/muster-exchange
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/muster-exchange"]
