# tickcast: build with the Rust image, run on distroless as a non-root user.
# The embedded price dataset is inside the binary; the image runs offline.
#
#   docker build -t tickcast .
#   docker run --rm -p 8080:8080 -v tickcast-state:/app/state tickcast
#
# tests/container/build-steps.sh runs these same steps without docker.

FROM rust:1.88-bookworm AS build
WORKDIR /src
# Manifests first, so dependency downloads are cached while sources change.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY config ./config
COPY data ./data
COPY models ./models
RUN cargo build --release --locked --bin tickcast \
    && mkdir -p /app/state /app/data/prices \
    && cp target/release/tickcast /app/tickcast \
    && cp -r config models /app/

FROM gcr.io/distroless/cc-debian12:nonroot
WORKDIR /app
# 65532 is distroless's "nonroot" user.
COPY --from=build --chown=65532:65532 /app /app
# Listen on every interface inside the container; everything else is the
# config in /app/config, overridable with TICKCAST_* variables.
ENV TICKCAST_SERVER__BIND=0.0.0.0 \
    TICKCAST_SERVER__PORT=8080 \
    TICKCAST_LOG__FORMAT=json
USER 65532:65532
EXPOSE 8080
# Config (mount your own over it), subscriptions (SQLite) and price files.
VOLUME ["/app/config", "/app/state", "/app/data/prices"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/app/tickcast", "healthcheck"]
ENTRYPOINT ["/app/tickcast"]
CMD ["serve"]
