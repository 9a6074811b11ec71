PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[lightgbm,examples]'

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[postgres,redis,s3,lightgbm,xgboost,catboost,ray,examples,test]'

demo: install
	cd examples && ../$(BIN)/python demo.py

test: install-test
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) examples/.conveyor examples/reports examples/data
