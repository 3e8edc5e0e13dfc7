#!/bin/sh
# Container entry point: bring the database schema up to date, then serve.
# Replicas may start together: on PostgreSQL `mirix migrate` takes an advisory lock, so they
# migrate one after another and all but the first find the schema at head already.
# MIRIX_HOST/MIRIX_PORT choose the listening address; extra arguments go to `mirix serve`.
set -eu

mirix migrate
# exec: the server replaces this shell, so `docker stop` (SIGTERM) reaches it and it shuts down cleanly.
exec mirix serve --host "${MIRIX_HOST:-0.0.0.0}" --port "${MIRIX_PORT:-8531}" "$@"
