#!/bin/sh
# Example: a daemon left running in the background, with a pidfile and a
# clean stop.
#
# start: launches busybox httpd in the foreground mode (-f) but backgrounded
#        by the shell, so $! is the daemon itself; records its pid; waits
#        until its port listens (a bounded readiness check, not a blind sleep).
# stop:  SIGTERM, then waits for the process to be gone (PID 1 reaps it),
#        SIGKILL after HTTPD_STOP_WAIT tenths of a second; removes the pidfile.
#        Waiting matters: dind-init checks for stray processes right after
#        the stops, and a daemon still exiting would make the commit unsafe.
#
# A pidfile found at start came back with a committed image and names a
# process of another life: at start nothing of ours runs, so it is stale.
#
# Settings (environment): HTTPD_PORT (8080), HTTPD_ROOT (/srv/www),
# HTTPD_PIDFILE (/run/example-httpd.pid), HTTPD_STOP_WAIT (50).
set -u

port=${HTTPD_PORT:-8080}
root=${HTTPD_ROOT:-/srv/www}
pidfile=${HTTPD_PIDFILE:-/run/example-httpd.pid}
stop_wait=${HTTPD_STOP_WAIT:-50}

case "${1:-}" in
start)
    rm -f "$pidfile"
    mkdir -p "$root" "$(dirname "$pidfile")"
    busybox httpd -f -p "127.0.0.1:$port" -h "$root" &
    echo $! > "$pidfile"
    listening=$(printf ':%04X 00000000:0000 0A' "$port")
    tries=0
    until grep -q "$listening" /proc/net/tcp; do
        tries=$((tries + 1))
        if [ "$tries" -ge 100 ] || ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            echo "httpd did not listen on port $port" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "httpd serving $root on 127.0.0.1:$port (pid $(cat "$pidfile"))"
    ;;
stop)
    [ -f "$pidfile" ] || exit 0
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null
    waited=0
    while kill -0 "$pid" 2>/dev/null; do
        waited=$((waited + 1))
        if [ "$waited" -eq "$stop_wait" ]; then
            echo "httpd ignored SIGTERM; killing it" >&2
            kill -KILL "$pid" 2>/dev/null
        fi
        sleep 0.1
    done
    rm -f "$pidfile"
    echo "httpd stopped"
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
