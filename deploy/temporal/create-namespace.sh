#!/bin/sh
# The Kartu namespace and its search attributes (run by the temporal-namespace job in
# temporalio/admin-tools, with the `temporal` CLI). Idempotent: what exists is kept.
set -eu

: "${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS is required}"
NAMESPACE=${TEMPORAL_NAMESPACE:-default}
RETENTION=${TEMPORAL_NAMESPACE_RETENTION:-30d}
# Kartu's search attributes (workflows/search_attributes.py), as name=type.
ATTRIBUTES="KartuPaymentStatus=Keyword KartuFlow=Keyword KartuCustomerId=Keyword
KartuAmount=Int KartuAuthExpiresAt=Datetime KartuInvoiceNumber=Keyword"

echo "waiting for Temporal at ${TEMPORAL_ADDRESS}"
attempt=1
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
  [ "$attempt" -ge 60 ] && { echo "Temporal did not become healthy" >&2; exit 1; }
  attempt=$((attempt + 1))
  sleep 2
done

if temporal operator namespace describe --address "$TEMPORAL_ADDRESS" -n "$NAMESPACE" >/dev/null 2>&1; then
  echo "namespace ${NAMESPACE} exists"
else
  temporal operator namespace create --address "$TEMPORAL_ADDRESS" -n "$NAMESPACE" --retention "$RETENTION"
  echo "namespace ${NAMESPACE} created (retention ${RETENTION})"
fi

# A new namespace takes a moment to reach every frontend: retry until listing works.
attempt=1
until existing=$(temporal operator search-attribute list --address "$TEMPORAL_ADDRESS" -n "$NAMESPACE" 2>/dev/null); do
  [ "$attempt" -ge 30 ] && { echo "cannot list search attributes of ${NAMESPACE}" >&2; exit 1; }
  attempt=$((attempt + 1))
  sleep 2
done
for attribute in $ATTRIBUTES; do
  name=${attribute%%=*}
  kind=${attribute#*=}
  if printf '%s\n' "$existing" | grep -qw "$name"; then
    echo "search attribute ${name} exists"
  else
    temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" -n "$NAMESPACE" \
      --name "$name" --type "$kind"
    echo "search attribute ${name} (${kind}) created"
  fi
done
