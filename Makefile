# The two commands of a fresh machine:  `make run`  and  `make test`  (see README).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
PG_URL ?= postgresql://root@127.0.0.1:5432/test

.PHONY: install run demo serve test lint typecheck test-sqlite test-postgres postgres browser bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

run: install  ## install, show the demo, then serve on http://localhost:8000
	$(BIN)/imi demo
	$(BIN)/imi serve --port 8000

demo: install
	$(BIN)/imi demo

serve: install
	$(BIN)/imi serve

postgres:  ## start the local PostgreSQL cluster if it is down
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy --strict .

test-sqlite: install
	$(BIN)/pytest

test-postgres: install postgres
	IMI_TEST_DATABASE_URL=$(PG_URL) $(BIN)/pytest

browser:  ## Debian's Chromium (and CJK fonts for the screenshots) for the page tests in tests/pages
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk)

test: browser lint typecheck test-sqlite test-postgres  ## everything CI runs

bench: install postgres
	bench/run

clean:
	rm -rf $(VENV) imi-data .mypy_cache .pytest_cache .ruff_cache
