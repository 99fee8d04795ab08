# carl as an image: a static musl binary on scratch, a CA bundle, a non-root user.
# There is no build stage: cargo builds the binary outside the image.
#
#   cargo build --release --target x86_64-unknown-linux-musl --bin carl
#   mkdir -p dist && cp target/x86_64-unknown-linux-musl/release/carl dist/carl
#   cp /etc/ssl/certs/ca-certificates.crt dist/ca-certificates.crt
#   podman build -t carl .
FROM scratch
COPY dist/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY dist/carl /usr/local/bin/carl
# rustls' platform verifier reads the bundle from here in an image without a CA store.
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/carl"]
CMD ["--help"]
