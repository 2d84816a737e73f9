# orderlift: `make demo` sets up and runs the demo; `make test` sets up and runs the checks.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO := demo

.PHONY: setup demo test lint format clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "orderlift needs Python >= 3.11; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

demo: $(STAMP)
	$(BIN)/orderlift generate --out $(DEMO)/store --users 5000 --items 2000 --days 90 --seed 7
	$(BIN)/orderlift inspect --events $(DEMO)/store/events.csv --items $(DEMO)/store/items.csv \
		--quarantine $(DEMO)/store/quarantine.csv
	$(BIN)/orderlift train --events $(DEMO)/store/events.csv --items $(DEMO)/store/items.csv \
		--model als --out $(DEMO)/model --register orderlift --alias candidate
	$(BIN)/orderlift promote --model orderlift --from-alias candidate --alias production
	@echo ""
	@echo "Serving models:/orderlift@production on http://127.0.0.1:8000 (Ctrl+C stops). Try, in another shell:"
	@echo "  curl 'http://127.0.0.1:8000/v1/users/u0001/recommendations?n=5&explain=true'"
	@echo "  curl -X POST http://127.0.0.1:8000/v1/cart/cross-sell -H 'content-type: application/json' \\"
	@echo "       -d '{\"items\": [{\"item_id\": \"i0098\", \"quantity\": 1}], \"n\": 5}'"
	@echo "  curl 'http://127.0.0.1:8000/v1/items/i0098/similar?kind=also_bought&n=5'"
	@echo "  curl 'http://127.0.0.1:8000/v1/bundles?n=5&format=csv'"
	@echo "  curl 'http://127.0.0.1:8000/v1/trending?n=5'"
	@echo "  curl -X POST http://127.0.0.1:8000/v1/admin/rules -H 'content-type: application/json' \\"
	@echo "       -d '{\"action\": \"hide\", \"category\": \"phones\"}'"
	@echo "  open http://127.0.0.1:8000/ui/bundles for the marketers' pages (bundles, rules, trending)"
	@echo "  open http://127.0.0.1:8000/docs for the API, mlflow ui --backend-store-uri sqlite:///mlflow.db for runs"
	$(BIN)/orderlift serve --model-uri models:/orderlift@production --port 8000

test: $(STAMP)
	$(BIN)/pytest -q
	@# The service suite again, against an artifact the Spark engine built (needs a Java runtime).
	@if command -v java >/dev/null 2>&1 || [ -n "$$JAVA_HOME" ]; then \
		ORDERLIFT_TEST_ENGINE=spark $(BIN)/pytest -q tests/service; \
	elif [ "$$ORDERLIFT_REQUIRE_SPARK" = 1 ]; then \
		echo "no Java runtime: the Spark engine's service suite cannot run" >&2; exit 1; \
	else \
		echo "skipped: the service suite on a Spark-built artifact (no Java runtime; .ci/run installs one)"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy features training service

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(DEMO) .mypy_cache .ruff_cache .pytest_cache
