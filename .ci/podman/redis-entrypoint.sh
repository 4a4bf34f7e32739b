#!/bin/sh
# Entrypoint of phasegate's locally built Redis image: like the official redis image,
# listens on all addresses with protected mode off; extra arguments (testcontainers passes
# "redis-server --requirepass ...") are appended, so they override these defaults.
set -eu
if [ "${1:-}" = "redis-server" ]; then shift; fi
if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then exec "$@"; fi
exec setpriv --reuid=redis --regid=redis --init-groups \
  redis-server --bind 0.0.0.0 --protected-mode no --save '' --appendonly no --dir /tmp "$@"
