#!/bin/sh
# DinD step 4: the inner dockerd.
#
# start: dockerd in the background (its log lines reach the container log
#        behind this script's name) with the storage driver and data root of
#        the storage mode (/run/dind-storage.env, written by
#        30-docker-storage.sh), a readiness wait on the API, and a check that
#        dockerd really uses that driver: a silent fallback (to vfs) would
#        copy every image in full, so fail loudly instead. A start that fails
#        stops the dockerd it started (SIGTERM, then SIGKILL) before it exits
#        non-zero: dind-init runs no stop for a failed start, and a dockerd
#        left running would write while the storage step saves its data.
# stop:  SIGTERM; dockerd stops its containers (those with restart policy
#        `always` come back at the next start; keep live-restore off) and its
#        containerd, then exits; wait until it is gone (DOCKERD_STOP_WAIT
#        seconds, then SIGKILL and a failed stop: not commit-safe).
#
# Settings (environment):
#   DOCKERD_FLAGS      replaces --log-level=warn (the storage driver and the
#                      data root are always given unless it names them)
#   DOCKERD_WAIT       seconds for the API to answer at start (60)
#   DOCKERD_STOP_WAIT  seconds for dockerd to exit at stop (40)
#   DIND_DOCKERD_IPTABLES  0: --iptables=false --ip6tables=false, for test
#                      environments whose L3 containers need no traffic to
#                      outside the L2 (no NAT: they reach only each other and
#                      the L2; published ports still work through
#                      docker-proxy); dockerd starts faster. Default 1.
#   DOCKER_TLS_CERTDIR as docker:dind: set, dockerd also listens on
#                      tcp://0.0.0.0:2376 with TLS (client certificates
#                      required) and the CA and a client certificate are
#                      copied to $DOCKER_TLS_CERTDIR/client at every start
#                      (the directory a GitLab job shares with its `docker`
#                      service); set and empty, plain tcp://0.0.0.0:2375;
#                      unset, the unix socket only. The certificates are
#                      made once, at the first start that asks for TLS, and
#                      kept in /var/lib/dind-tls (committed: not a volume),
#                      so every restore of a commit serves the same CA.
#   DOCKER_TLS_SAN     more subjectAltNames of the server certificate, in
#                      openssl's form (DNS:name,IP:address); it always has
#                      DNS:docker, DNS:localhost and IP:127.0.0.1
#   DOCKER_IPTABLES_LEGACY  as docker:dind: set and non-empty, dockerd uses
#                      iptables-legacy; set and empty, the default iptables
#                      (nf_tables); unset, legacy where the network namespace
#                      already has legacy tables or where iptables fails
#                      (no nf_tables in the kernel) and iptables-legacy works.
#
# The inner engine is always reached at its own socket, whatever DOCKER_HOST
# and DOCKER_TLS_* the container was given: GitLab passes a job's variables
# (DOCKER_HOST=tcp://docker:2376, ...) to its services. /run/dind-dockerd.env
# (written at start) says so to the later scripts that talk to the engine:
#   . /run/dind-dockerd.env
set -eu

engine_socket=unix:///var/run/docker.sock
client_env=/run/dind-dockerd.env
client_pin="export DOCKER_HOST=$engine_socket
unset DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_CONTEXT DOCKER_TLS"
eval "$client_pin"
tls_keep=/var/lib/dind-tls
legacy_dir=/run/dind-iptables-legacy

pidfile=/run/dind-dockerd.pid
wait_seconds=${DOCKERD_WAIT:-60}
stop_wait_seconds=${DOCKERD_STOP_WAIT:-40}
DIND_STORAGE_DRIVER=overlay2
DIND_DOCKER_ROOT=/var/lib/docker
# shellcheck disable=SC1091 # written at start by 30-docker-storage.sh
[ -f /run/dind-storage.env ] && . /run/dind-storage.env
driver_wanted=$DIND_STORAGE_DRIVER

now() { cut -d' ' -f1 /proc/uptime; }
# Whether SECONDS have passed since START (both from now()).
passed() { awk -v start="$1" -v now="$(now)" -v limit="$2" 'BEGIN { exit !(now - start >= limit) }'; }

# Whether PID is a dockerd of this container's own: named dockerd and in
# its pid namespace. A pid file may outlive its dockerd, and the processes of
# L3 containers (an L3's own dockerd among them) show in the L2's /proc.
is_our_dockerd() {
    [ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = dockerd ] \
        && [ "$(readlink "/proc/$1/ns/pid" 2>/dev/null)" = "$(readlink /proc/self/ns/pid)" ]
}

# The pid the pid file names, if that process is our dockerd.
dockerd_pid() {
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile")
    is_our_dockerd "$pid"
}

# SIGTERM, wait up to SECONDS, then SIGKILL; returns 1 when it needed SIGKILL.
stop_dockerd() {
    dockerd_pid || { rm -f "$pidfile"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    started=$(now)
    while [ -d "/proc/$pid" ] && [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" != Z ]; do
        if passed "$started" "$1"; then
            kill -KILL "$pid" 2>/dev/null || true
            rm -f "$pidfile"
            return 1
        fi
        sleep 0.1
    done
    rm -f "$pidfile"
}

fail_start() {
    echo "$*; stopping dockerd" >&2
    stop_dockerd 10 || echo "dockerd needed SIGKILL" >&2
    exit 1
}

# The CA, server and client certificates in $tls_keep, made once: kept
# through commits, so a restored engine serves the CA it had when committed.
# Made in a new directory renamed into place, so a start that dies half-way
# leaves no half-made set.
make_certificates() {
    [ ! -s "$tls_keep/client/cert.pem" ] || return 0
    command -v openssl >/dev/null \
        || { echo "DOCKER_TLS_CERTDIR is set, but there is no openssl to make the certificates: install it (apk add openssl, apt-get install openssl) or set DOCKER_TLS_CERTDIR= for plain tcp 2375" >&2; exit 1; }
    new=$tls_keep.new
    rm -rf "$new"
    mkdir -p "$new/ca" "$new/server" "$new/client"
    # The CA's key: whoever has it can give themselves a client certificate.
    chmod 0700 "$new"
    key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
    # sign NAME CN EXTENSIONS: NAME's key, a certificate signed by the CA.
    sign() {
        key "$new/$1/key.pem"
        printf '[ x509_exts ]\n%s\n' "$3" > "$new/$1/openssl.cnf"
        openssl req -new -key "$new/$1/key.pem" -subj "/CN=$2" -out "$new/$1/csr.pem"
        openssl x509 -req -in "$new/$1/csr.pem" -CA "$new/ca/cert.pem" -CAkey "$new/ca/key.pem" \
            -CAcreateserial -days 3650 -extfile "$new/$1/openssl.cnf" -extensions x509_exts \
            -out "$new/$1/cert.pem" 2>/dev/null
        cp "$new/ca/cert.pem" "$new/$1/ca.pem"
        openssl verify -CAfile "$new/$1/ca.pem" "$new/$1/cert.pem" >/dev/null
    }
    key "$new/ca/key.pem"
    openssl req -new -x509 -key "$new/ca/key.pem" -subj '/CN=dind-init CA' -days 3650 \
        -addext keyUsage=critical,digitalSignature,keyCertSign -out "$new/ca/cert.pem"
    sign server 'dind-init server' "extendedKeyUsage = serverAuth
subjectAltName = DNS:docker,DNS:localhost,IP:127.0.0.1${DOCKER_TLS_SAN:+,$DOCKER_TLS_SAN}"
    sign client 'dind-init client' 'extendedKeyUsage = clientAuth'
    sync
    rm -rf "$tls_keep"
    mv "$new" "$tls_keep"
    echo "TLS certificates made in $tls_keep (CA, server for DNS:docker, client)"
}

# The CA and client certificate where a job finds them, at every start: a
# GitLab job's $DOCKER_TLS_CERTDIR/client is a new, empty volume.
share_client_certificates() {
    mkdir -p "$1"
    for file in ca.pem cert.pem key.pem; do
        cp "$tls_keep/client/$file" "$1/$file"
        # As docker:dind: a job's client may run as any user.
        chmod 0644 "$1/$file"
    done
}

# docker:dind's choice of iptables (its dockerd-entrypoint.sh): legacy when
# asked, when the network namespace already has legacy tables, or when
# iptables (nf_tables) fails and iptables-legacy works. Legacy means a
# directory of iptables-legacy links first on dockerd's PATH.
choose_iptables() {
    legacy=
    if [ -n "${DOCKER_IPTABLES_LEGACY+x}" ]; then
        legacy=$DOCKER_IPTABLES_LEGACY
    elif (for names in /proc/net/ip_tables_names /proc/net/ip6_tables_names /proc/net/arp_tables_names; do
        [ -z "$(cat "$names" 2>/dev/null)" ] || exit 0
    done; exit 1); then
        legacy=1
    elif ! iptables -nL >/dev/null 2>&1; then
        modprobe nf_tables 2>/dev/null || :
        if ! iptables -nL >/dev/null 2>&1; then
            modprobe ip_tables 2>/dev/null || :
            modprobe ip6_tables 2>/dev/null || :
            ! iptables-legacy -nL >/dev/null 2>&1 || legacy=1
        fi
    fi
    if [ -n "$legacy" ]; then
        mkdir -p "$legacy_dir"
        for tool in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
            target=$(command -v "$(echo "$tool" | sed 's/tables/tables-legacy/')") \
                || { echo "iptables-legacy chosen, but there is no $(echo "$tool" | sed 's/tables/tables-legacy/'): install iptables-legacy" >&2; exit 1; }
            ln -sf "$target" "$legacy_dir/$tool"
        done
        PATH=$legacy_dir:$PATH
    fi
    # As docker:dind: the log says which one dockerd uses.
    iptables --version
}

case "${1:-}" in
start)
    if dockerd_pid; then
        echo "dockerd (pid $pid) of an earlier start still runs: not starting a second one on the same data; stop it (kill $pid) or restart the container" >&2
        exit 1
    fi
    # A pid file of a dockerd that died (--on-daemon-exit=restart skips
    # 20-runtime-cleanup.sh) would make the new one refuse to start.
    docker_pid=$(cat /var/run/docker.pid 2>/dev/null || true)
    [ -z "$docker_pid" ] || is_our_dockerd "$docker_pid" || rm -f /var/run/docker.pid
    flags=${DOCKERD_FLAGS:---log-level=warn}
    case " $flags" in *" --storage-driver"* | *" -s "*) ;; *) flags="$flags --storage-driver=$driver_wanted" ;; esac
    case " $flags" in *" --data-root"*) ;; *) flags="$flags --data-root=$DIND_DOCKER_ROOT" ;; esac
    if [ "${DIND_DOCKERD_IPTABLES:-1}" != 0 ]; then
        choose_iptables
    else
        flags="$flags --iptables=false --ip6tables=false"
    fi
    case " $flags" in
    *" --host"* | *" -H "*) ;;
    *)
        flags="$flags --host=$engine_socket"
        if [ -n "${DOCKER_TLS_CERTDIR:-}" ]; then
            make_certificates
            share_client_certificates "$DOCKER_TLS_CERTDIR/client"
            flags="$flags --host=tcp://0.0.0.0:2376 --tlsverify --tlscacert=$tls_keep/server/ca.pem --tlscert=$tls_keep/server/cert.pem --tlskey=$tls_keep/server/key.pem"
        elif [ -n "${DOCKER_TLS_CERTDIR+x}" ]; then
            flags="$flags --host=tcp://0.0.0.0:2375"
        fi
        ;;
    esac
    # As docker:dind (moby's hack/dind, just before dockerd): mounts made
    # under / propagate as on a host with systemd, for L3 bind mounts with
    # rshared or rslave propagation.
    mount --make-rshared / || echo "mount --make-rshared / failed: L3 mounts with shared propagation will not work" >&2
    printf '%s\n' "$client_pin" > "$client_env.new"
    mv "$client_env.new" "$client_env"
    # shellcheck disable=SC2086 # a list of flags
    dockerd $flags &
    echo $! > "$pidfile"
    started=$(now)
    until docker version >/dev/null 2>&1; do
        dockerd_pid || { echo "dockerd exited during start-up" >&2; rm -f "$pidfile"; exit 1; }
        ! passed "$started" "$wait_seconds" || fail_start "dockerd did not answer within ${wait_seconds}s"
        sleep 0.1
    done
    driver=$(docker info --format '{{.Driver}}') || fail_start "docker info failed"
    if [ "$driver" != "$driver_wanted" ]; then
        fail_start "storage driver is '$driver', not $driver_wanted (storage mode ${DIND_STORAGE:-?}): see 30-docker-storage.sh's log"
    fi
    # dockerd replaces DATA_ROOT/runtimes at every start by two renames,
    # which fail on a directory of the image's lower layers: "invalid
    # cross-device link" where it is kept, and, where it is removed first (as
    # 30-docker-storage.sh does), a fuse-overlayfs L1 shows it again after
    # the first rename ("rename .../gen-runtimes... .../runtimes: file
    # exists"). A commit without a quiesce (whose stop removes it) would put
    # it there; so it goes now, when empty (no runtime with arguments in
    # daemon.json writes into it), in the plain-file modes, whose data root
    # is committed.
    case "${DIND_STORAGE:-}" in
    vfs | fuse-overlayfs) rmdir "$DIND_DOCKER_ROOT/runtimes" 2>/dev/null || true ;;
    esac
    echo "dockerd ready (pid $(cat "$pidfile"), storage driver $driver, data root $DIND_DOCKER_ROOT$([ "${DIND_DOCKERD_IPTABLES:-1}" != 0 ] || echo ', no iptables'))"
    ;;
stop)
    if ! stop_dockerd "$stop_wait_seconds"; then
        echo "dockerd did not exit within ${stop_wait_seconds}s of SIGTERM: killed; its containers did not stop cleanly (not commit-safe)" >&2
        exit 1
    fi
    echo "dockerd stopped"
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
