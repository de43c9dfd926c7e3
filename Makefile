# The two set-up commands are `make demo` and `make test` (see README.md).
.PHONY: demo test bench screenshots lint

demo:
	scripts/demo.sh

test:
	scripts/test.sh

bench:
	scripts/bench.sh

screenshots:
	scripts/screenshots.sh

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && DJANGO_DEBUG=1 .venv/bin/mypy gridmap accounts incidents dispatch command audit realtime config && .venv/bin/lint-imports
