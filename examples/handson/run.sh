#!/usr/bin/env bash
# The hands-on's six commands, in order, with `az ml` replaced by `titanicml`.
#
# Runs in a copy of this folder (a new temporary folder, or $1 if given, which must not
# exist or be empty), with its own titanicml workspace and MLflow store inside it, so it
# never touches your ./mlflow.db or ./.titanicml. The endpoint is deleted on exit, even
# on failure or Ctrl-C: no server is left running.
#
#   bash examples/handson/run.sh [WORK_DIR]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="${1:-$(mktemp -d "${TMPDIR:-/tmp}/titanicml-handson.XXXXXX")}"
mkdir -p "$work"
if [ -n "$(ls -A "$work")" ]; then
    echo "run.sh: $work is not empty; give a new or empty folder" >&2
    exit 2
fi
cp -R "$here/data" "$here/src" "$work/"
cd "$work"

export TITANICML_HOME="${TITANICML_HOME:-$work/.titanicml}"
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-sqlite:///$work/mlflow.db}"
echo "== working in $work (workspace $TITANICML_HOME, store $MLFLOW_TRACKING_URI)"

cleanup() {
    # Only if the endpoint was created: delete stops its router and deployments.
    if titanicml online-endpoint show --name titanic-endpoint >/dev/null 2>&1; then
        echo "== cleanup: titanicml online-endpoint delete --name titanic-endpoint --yes"
        titanicml online-endpoint delete --name titanic-endpoint --yes
    fi
}
trap cleanup EXIT
trap "exit 130" INT
trap "exit 143" TERM

step() {
    echo
    echo "== $*"
    "$@"
}

step titanicml data create --name titanic-dataset --path ./data/titanic.csv --type uri_file
step titanicml job create -f src/jobs/train-titanic.yml --stream
step titanicml model register --name titanic-model --path ./outputs/model.pkl
step titanicml online-endpoint create -f src/endpoints/endpoint.yml
step titanicml online-deployment create -f src/endpoints/deployment.yml --all-traffic --overwrite

json_field() {
    python -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}
ENDPOINT_URL="$(titanicml online-endpoint show --name titanic-endpoint | json_field scoring_uri)"
TOKEN="$(titanicml online-endpoint get-credentials --name titanic-endpoint | json_field primaryKey)"

echo
echo "== curl -X POST $ENDPOINT_URL -H \"Authorization: Bearer \$TOKEN\" ..."
curl --fail-with-body -sS -X POST "$ENDPOINT_URL" -H "Authorization: Bearer $TOKEN" \
    -H "Content-Type: application/json" \
    -d '{"data": [{"Age": 22, "Pclass": 3, "Sex": "male"}]}'
echo
