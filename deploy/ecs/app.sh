#!/bin/sh
# The example app of deploy/ecs/Dockerfile: vault-exec starts it with the
# secrets in its environment. It shows which variables it received (values
# masked; never print a secret) and then waits until ECS stops it.
set -eu
echo "example app: pid $$, uid $(id -u)"
echo "variables received (values masked):"
env | cut -d= -f1 | sort | while read -r name; do
    case $name in
        HOME | HOSTNAME | PATH | PWD | SHLVL | _ | AWS_* | ECS_*) ;;
        *) echo "  $name=****" ;;
    esac
done
trap 'echo "example app: stopping"; exit 0' TERM INT
while :; do
    sleep 3600 &
    wait $! || true
done
