# `make book` builds the HTML book, `make test` runs every check; both set up .venv first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OFFLINE_DATA := _build/wikitext-2-offline
export D2L_WIKITEXT2_DIR ?= $(CURDIR)/$(OFFLINE_DATA)
BUILD_OPTS := -W -n --keep-going

.PHONY: book book-student notebooks sync check test bench browser-deps clean

# A venv that matches requirements.txt; its .pth file puts this directory on sys.path, so
# notebooks anywhere import d2l_extras and Sphinx finds booktools.
$(STAMP): requirements.txt
	@PYTHON=$$(for p in python3.11 python3; do \
	    command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
	    && { echo $$p; break; }; done); \
	if [ -z "$$PYTHON" ]; then \
	  echo "error: Python 3.11 was not found. Install it (e.g. 'pyenv install 3.11' or your OS package)" >&2; \
	  echo "       and make sure 'python3.11' is on PATH, then run make again." >&2; exit 1; fi; \
	echo "creating $(VENV) with $$PYTHON"; \
	[ -x $(PY) ] || $$PYTHON -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -c 'import site; print(site.getsitepackages()[0])' | xargs -I{} sh -c 'echo "$(CURDIR)" > {}/bert-book.pth'
	touch $(STAMP)

$(OFFLINE_DATA)/wiki.train.tokens: | $(STAMP)
	$(PY) -m booktools offline-data $(OFFLINE_DATA)

# Regenerate notebooks and d2l_extras from chapters/*.md (no execution).
sync: $(STAMP)
	$(PY) -m booktools sync

# Execute the notebooks whose sources changed (all of them with ALL=1) and store outputs.
notebooks: $(STAMP) $(OFFLINE_DATA)/wiki.train.tokens
	$(PY) -m booktools execute $(if $(ALL),,--stale)

book: notebooks
	$(VENV)/bin/jupyter-book build . $(BUILD_OPTS)

book-student: notebooks
	$(PY) -m booktools student _build/student-src
	$(VENV)/bin/jupyter-book build _build/student-src $(BUILD_OPTS)
	rm -rf _build/student && mkdir -p _build/student && mv _build/student-src/_build/html _build/student/html

check: $(STAMP)
	$(PY) -m booktools check

browser-deps:
	@command -v chromium >/dev/null && fc-list | grep -qi 'Noto Sans CJK' || { \
	  echo "installing chromium and fonts-noto-cjk for the browser test"; \
	  $$( [ $$(id -u) -eq 0 ] || echo sudo ) apt-get update -qq && \
	  $$( [ $$(id -u) -eq 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk; }

test: book book-student browser-deps
	$(PY) -m pytest tests chapters/mxnet chapters/pytorch --nbval-lax --nbval-current-env \
	  --nbval-sanitize-with tests/nbval_sanitize.cfg

bench: $(STAMP) $(OFFLINE_DATA)/wiki.train.tokens
	$(PY) -m booktools.bench

clean:
	rm -rf _build
