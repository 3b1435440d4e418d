# An L2 that behaves like one built FROM the official docker:dind image where
# it matters to the storage step: VOLUME /var/lib/docker, declared exactly as
# docker:dind declares it (so a commit skips it), no other volume (not the
# project's /var/lib/dind-storage-live), and busybox's sh and tools ahead of
# Debian's on PATH, as on Alpine (docker:dind has busybox's mount, cp, df,
# truncate ...; e2fsprogs, iptables and docker come from packages). Built
# from the L2's root file system (no registry here to pull docker:dind).
ARG ROOTFS
FROM ${ROOTFS}
COPY dind-init /usr/local/bin/dind-init
COPY busybox /usr/local/busybox/bin/busybox
RUN ["/usr/local/busybox/bin/busybox", "--install", "-s", "/usr/local/busybox/bin"]
RUN ["/usr/local/busybox/bin/busybox", "ln", "-sf", "/usr/local/busybox/bin/busybox", "/bin/sh"]
RUN ["/usr/local/busybox/bin/busybox", "mkdir", "-p", "/etc/dind-init/init.d"]
ENV PATH=/usr/local/busybox/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
VOLUME /var/lib/docker
ENTRYPOINT ["/usr/local/bin/dind-init"]
