# The Sluice image for those who build with Docker: `docker build -t sluice:0.1.0 .`
# scripts/image builds the same image without a Docker daemon (docs/install.md); a test keeps the two in step:
# the same `swift build` command, and the runtime packages of one list, scripts/image-packages.

# Build: the official Swift image on Debian 12, as the runtime below.
FROM swift:6.3-bookworm AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libcurl4-openssl-dev libsqlite3-dev libxml2-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The whole package (Package.swift names the test targets, so their folders must be there); .dockerignore
# leaves out the build folders and the tools.
COPY . .
RUN swift build -c release --product sluice --static-swift-stdlib -Xlinker -l_CFXMLInterface -Xlinker -lxml2 \
    && install -D -m 0755 "$(swift build -c release --show-bin-path)/sluice" /out/sluice \
    && strip --strip-debug /out/sluice

# Run: Debian slim with the shared libraries the binary loads (the Swift runtime is linked in).
FROM debian:bookworm-slim
COPY scripts/image-packages /tmp/image-packages
RUN apt-get update \
    && grep -v '^#' /tmp/image-packages | xargs env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends \
    && rm -rf /var/lib/apt/lists/* /tmp/image-packages \
    && groupadd --gid 65532 sluice \
    && useradd --uid 65532 --gid 65532 --home-dir /var/lib/sluice --shell /usr/sbin/nologin sluice \
    && install -d -o 65532 -g 65532 -m 0700 /var/lib/sluice \
    && install -d -m 0755 /etc/sluice
COPY --from=build /out/sluice /usr/local/bin/sluice
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="sluice" \
      org.opencontainers.image.description="Sluice, a progressive-delivery controller" \
      org.opencontainers.image.version="${VERSION}"
USER 65532:65532
WORKDIR /var/lib/sluice
EXPOSE 7700
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["serve", "--config", "/etc/sluice/sluice.yaml"]
