#!/bin/sh
# Creates the namespace with its retention (or sets the retention of an existing one), then
# registers the Keyword search attributes named as arguments. Fails loudly: the only error it
# tolerates is an attribute that already exists with the same type. Run by the
# temporal-namespace job (temporalio/admin-tools) once the server is healthy; safe to re-run.
set -eu
: "${TEMPORAL_ADDRESS:?set TEMPORAL_ADDRESS (host:port of the Temporal frontend)}"
namespace="${TEMPORAL_NAMESPACE:-default}"
retention="${TEMPORAL_NAMESPACE_RETENTION:-30d}"
attempts="${TEMPORAL_SETUP_ATTEMPTS:-30}"

if temporal operator namespace describe --namespace "$namespace" >/dev/null 2>&1; then
    temporal operator namespace update --namespace "$namespace" --retention "$retention"
else
    temporal operator namespace create --namespace "$namespace" --retention "$retention"
fi

# A namespace just created takes a few seconds to reach every server role: retry until it has.
register() {
    temporal operator search-attribute create --namespace "$namespace" \
        --name "$1" --type Keyword 2>&1
}
for name in "$@"; do
    attempt=1
    until out=$(register "$name"); do
        case "$out" in
        *"different type"*)
            echo "temporal-namespace: $name exists with another type: $out" >&2
            exit 1
            ;;
        *"already exists"*)
            break
            ;;
        esac
        if [ "$attempt" -ge "$attempts" ]; then
            echo "temporal-namespace: could not register $name: $out" >&2
            exit 1
        fi
        attempt=$((attempt + 1))
        sleep 2
    done
    echo "temporal-namespace: $name (Keyword) registered"
done
temporal operator namespace describe --namespace "$namespace"
