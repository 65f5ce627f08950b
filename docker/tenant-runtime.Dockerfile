# The tenant image: nothing but the statically linked tenant-runtime binary, run as a
# non-root user, with no shell and no package manager. Built by docker/build-tenant-image.sh
# (no registry is needed: the context is the prebuilt binary).
FROM scratch
COPY tenant-runtime /tenant-runtime
# An empty /data owned by the runtime's user: a new named volume mounted there takes this
# ownership, so the non-root runtime can write its workspace.
COPY --chown=65532:65532 data /data
USER 65532:65532
ENV WEBSPLAT_RUNTIME_LISTEN=0.0.0.0:8080 WEBSPLAT_RUNTIME_DATA_DIR=/data
EXPOSE 8080
ENTRYPOINT ["/tenant-runtime"]
