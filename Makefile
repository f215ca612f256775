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

bench:  # quick CPU sizes; run a bench without arguments for its full size (GPU ones on a GPU)
	@py=$$(bash scripts/setup.sh all) && set -e && \
	$$py bench/store_bench.py --small && $$py bench/schedules_bench.py && \
	$$py bench/batched_bench.py --small && $$py bench/sweep_bench.py --small && \
	$$py bench/fit_bench.py --loop-starts 200 && \
	$$py bench/dashboard_bench.py --runs 8 --points 20000 --minutes 0.5 && \
	$$py bench/runs_table_bench.py --runs 16 --points 20000 && \
	$$py bench/overview_bench.py --runs 16 --points 20000 --reps 3

reference:
	@py=$$(bash scripts/setup.sh) && $$py -m workbench.reference --regenerate
