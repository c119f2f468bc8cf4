.PHONY: install test lint format demo ci bench clean

install:
	python -m pip install -e ".[test]"

test:
	python -m pytest

lint:
	ruff check src tests benchmarks scripts
	ruff format --check src tests
	shellcheck -s sh scripts/neo4j-docker-admin
	mypy

format:
	ruff format src tests
	ruff check --fix src tests

demo:
	spillover demo

bench:
	python benchmarks/bench.py

ci:
	d=$$(mktemp -d) && git clone -q . "$$d" && cd "$$d" && bash .ci/run

clean:
	rm -rf build dist .pytest_cache .ruff_cache .hypothesis
