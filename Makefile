# `make book` builds the HTML book, `make test` runs every check; both set up .venv first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BUILD_OPTS := -W -n --keep-going
PYTEST := $(PY) -m pytest
UNIT := not notebook and not book and not browser and not slow and not classroom and not pdf
# what `make pdf` needs from Debian: LuaLaTeX with luatexja, latexmk, the Noto CJK and DejaVu
# fonts, rsvg-convert (SVG plots -> PDF) and pdftotext (the pdf tests)
PDF_PACKAGES := texlive-luatex texlive-lang-japanese texlive-latex-recommended \
  texlive-latex-extra texlive-fonts-recommended latexmk fonts-noto-cjk fonts-dejavu-core \
  librsvg2-bin poppler-utils

.PHONY: book book-student pages notebooks sync check unit lint test bench browser-deps pdf \
  pdf-deps classroom clean

# A venv with the pinned requirements and this project installed in editable mode.
$(STAMP): requirements.txt pyproject.toml
	@PYTHON=$$(for p in python3.11 python3; do \
	    command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
	    && { echo $$p; break; }; done); \
	if [ -z "$$PYTHON" ]; then \
	  echo "error: Python 3.11 was not found. Install it (e.g. 'pyenv install 3.11' or your OS package)" >&2; \
	  echo "       and make sure 'python3.11' is on PATH, then run make again." >&2; exit 1; fi; \
	echo "creating $(VENV) with $$PYTHON"; \
	[ -x $(PY) ] || $$PYTHON -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

# Regenerate notebooks and d2l_extras from chapters/*.md (no execution; outputs are kept
# unless a notebook's code changed).
sync: $(STAMP)
	$(PY) -m booktools sync

# Execute the notebooks whose code changed (all of them with ALL=1) and store outputs.
notebooks: $(STAMP)
	$(PY) -m booktools execute $(if $(ALL),,--stale)

# The tabbed book pages (chapters/tabbed/, not committed), from the executed notebooks.
pages: notebooks
	$(PY) -m booktools pages

book: pages
	$(VENV)/bin/jupyter-book build . $(BUILD_OPTS)

book-student: notebooks
	$(PY) -m booktools student _build/student-src
	$(VENV)/bin/jupyter-book build _build/student-src $(BUILD_OPTS)
	rm -rf _build/student && mkdir -p _build/student && mv _build/student-src/_build/html _build/student/html

# The nbgrader course (source/ and release/, one assignment per chapter and framework).
classroom: $(STAMP)
	$(PY) -m booktools classroom _build/classroom

check: $(STAMP)
	$(PY) -m booktools check

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Seconds: no notebook execution, no book build, no browser.
unit: lint
	$(PYTEST) -m "$(UNIT)" -q

browser-deps:
	@command -v chromium >/dev/null && fc-list | grep -qi 'Noto Sans CJK' || { \
	  echo "installing chromium and fonts-noto-cjk for the browser test"; \
	  $$( [ $$(id -u) -eq 0 ] || echo sudo ) apt-get update -qq && \
	  $$( [ $$(id -u) -eq 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk; }

pdf-deps:
	@dpkg -s $(PDF_PACKAGES) >/dev/null 2>&1 || { \
	  echo "installing the LaTeX packages and fonts for the PDF build"; \
	  $$( [ $$(id -u) -eq 0 ] || echo sudo ) apt-get update -qq && \
	  $$( [ $$(id -u) -eq 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends $(PDF_PACKAGES); }

# One PDF per framework, teacher's and student's editions, into _build/pdf/; copied into the
# HTML sites already built (_build/html/pdf/, _build/student/html/pdf/), which link them.
pdf: notebooks pdf-deps
	$(PY) -m booktools pdf --student

# Everything: the fast tier first, then the nbgrader course (it builds and grades its own
# copy), the books, the browser and the notebooks.
test: unit
	$(PYTEST) -m classroom
	$(MAKE) book book-student browser-deps
	$(PYTEST) -m "not ($(UNIT)) and not classroom and not pdf"

bench: $(STAMP)
	$(PY) -m benchmarks
	$(PY) -m benchmarks.scaling

clean:
	rm -rf _build chapters/tabbed
