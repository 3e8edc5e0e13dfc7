#!/usr/bin/env bash
# Start PostgreSQL (with pgvector), Redis and a Kafka-compatible broker for local development and
# print the variables to use.
# Stop them with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
services_start
trap services_stop EXIT
echo "export MIRIX_TEST_PG_URI=$MIRIX_TEST_PG_URI MIRIX_TEST_REDIS_URL=$MIRIX_TEST_REDIS_URL MIRIX_TEST_KAFKA_BOOTSTRAP=$MIRIX_TEST_KAFKA_BOOTSTRAP"
echo "Press Ctrl-C to stop."
while sleep 3600; do :; done
