# The tenant image: nothing but the statically linked tenant-runtime binary, run as a
# non-root user, with no shell and no package manager. Built by docker/build-tenant-image.sh
# (no registry is needed: the context is the prebuilt binary).
FROM scratch
COPY tenant-runtime /tenant-runtime
USER 65532:65532
ENV WEBSPLAT_RUNTIME_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/tenant-runtime"]
