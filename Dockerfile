# herd's container image with a Docker or BuildKit daemon. Where there is
# none (CI here), deploy/image/build.sh writes the same image as an OCI
# layout; docs/kubernetes.md says how to push either.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#                --build-arg COMMIT=$(git rev-parse HEAD) -t herd .
FROM golang:1.26-bookworm AS build
ARG VERSION=devel
ARG COMMIT=unknown
RUN apt-get update && apt-get install -y --no-install-recommends libcap2-bin && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/herd-replay/herd/internal/version.Version=${VERSION} -X github.com/herd-replay/herd/internal/version.Commit=${COMMIT}" \
      -o /out/herd ./cmd/herd \
 # Live capture as a non-root user: CAP_NET_RAW as a file capability.
 && setcap cap_net_raw+ep /out/herd

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=devel
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="herd" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.source="https://github.com/herd-replay/herd"
COPY --from=build /out/herd /usr/local/bin/herd
USER 65532:65532
ENTRYPOINT ["herd"]
CMD ["--help"]
