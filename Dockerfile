# carl as an image: a static musl binary on scratch, a CA bundle, a non-root user.
# There is no build stage: cargo builds the binary outside the image.
#
#   cargo xtask dist            # dist/carl (static, stripped, checked) and dist/ca-certificates.crt
#   podman build -t carl .      # or: cargo xtask dist --image
FROM scratch
COPY dist/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY dist/carl /usr/local/bin/carl
# rustls' platform verifier reads the bundle from here in an image without a CA store.
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/carl"]
CMD ["--help"]
