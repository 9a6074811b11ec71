PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo demo-stop test browser install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[lightgbm,examples]'

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[postgres,redis,s3,lightgbm,xgboost,catboost,ray,examples,test]'

demo: install
	cd examples && ../$(BIN)/python demo.py

demo-stop:
	-kill $$(cat examples/.conveyor/server.pid) && rm -f examples/.conveyor/server.pid

test: install-test browser
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

# The UI tests drive Debian's Chromium; install it where it is missing and we may.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1)) \
		&& echo "installed chromium for the UI tests"; } || echo "chromium missing: the UI tests will skip (or fail with CONVEYOR_REQUIRE_SERVICES=1)"

clean:
	rm -rf $(VENV) examples/.conveyor examples/reports examples/data
