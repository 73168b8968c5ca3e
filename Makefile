VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# The wire-protocol test server (mongoeco) needs Python 3.13+; the project itself stays on 3.11.
MONGO_VENV ?= .venv-mongo

.PHONY: run test bench lint clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,test,bench]'
	touch $@

# No Python 3.13+ here: say so once and go on; the wire-backend tests then skip (and fail under CI=true).
$(MONGO_VENV)/.installed: tests/wire/requirements.txt
	@py=$$(sh tests/wire/find_python.sh); \
	if [ -z "$$py" ]; then \
		echo "no Python 3.13+ found: wire-backend tests will be skipped (install one, e.g. pyenv install 3.13)"; \
	else \
		(test -x $(MONGO_VENV)/bin/python || $$py -m venv $(MONGO_VENV)) && \
		$(MONGO_VENV)/bin/python -m pip install --quiet -r tests/wire/requirements.txt && touch $@; \
	fi

run: $(VENV)/.installed
	$(VENV)/bin/syncjobs dev

# Two worker processes, one per core; tests that must not be split or overlap are grouped (tests/parallel.py).
test: $(VENV)/.installed $(MONGO_VENV)/.installed
	$(PY) -m pytest -q -n 2 --dist loadgroup

lint: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[lint]'
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy models

bench: $(VENV)/.installed $(MONGO_VENV)/.installed
	$(PY) bench/schedule_scale.py

clean:
	rm -rf $(VENV) $(MONGO_VENV) .pytest_cache
