# The two commands a newcomer runs (see README.md). Each does all of its own set-up:
# scripts/setup.sh makes ./.venv (or uses the active env), installs CPU torch==2.13.0 where no
# torch is present, then this package with the extras the target needs.
.PHONY: serve test lint bench reference

PORT ?= 5006

serve:
	@py=$$(bash scripts/setup.sh) && $$py -m workbench serve --port $(PORT)

test:
	@py=$$(bash scripts/setup.sh all) && WORKBENCH_SMOKE=1 $$py -m pytest -q

lint:
	@py=$$(bash scripts/setup.sh all) && $$py -m ruff check workbench tests bench

bench:
	@py=$$(bash scripts/setup.sh all) && for b in bench/*_bench.py; do echo "== $$b"; $$py $$b --small || exit 1; done

reference:
	@py=$$(bash scripts/setup.sh) && $$py -m workbench.reference --regenerate
