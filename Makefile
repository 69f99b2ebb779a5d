# `make book` builds the HTML book, `make test` runs every check; both set up .venv first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BUILD_OPTS := -W -n --keep-going
PYTEST := $(PY) -m pytest
UNIT := not notebook and not book and not browser and not slow and not classroom and not pdf \
  and not wheel and not compat
# what `make pdf` needs from Debian: LuaLaTeX with luatexja, latexmk, the Noto CJK and DejaVu
# fonts, rsvg-convert (SVG plots -> PDF) and pdftotext (the pdf tests)
PDF_PACKAGES := texlive-luatex texlive-lang-japanese texlive-latex-recommended \
  texlive-latex-extra texlive-fonts-recommended latexmk fonts-noto-cjk fonts-dejavu-core \
  librsvg2-bin poppler-utils

.PHONY: book book-student pages notebooks sync check unit lint test bench browser-deps pdf \
  pdf-deps classroom clean wheel compat

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

# The book's library as a wheel (pyproject.toml: d2l_extras with its checkpoints, and the
# build tooling), built from a copy so that setuptools leaves no build/ in the checkout. The
# front page links it (chapters/index.md, a {download}); every notebook's first cell installs it.
WHEEL_DIR := _build/dist
WHEEL_SRC := _build/wheel-src
wheel: $(STAMP)
	rm -rf $(WHEEL_SRC) $(WHEEL_DIR) && mkdir -p $(WHEEL_SRC)
	tar -c --exclude=__pycache__ --exclude='*.pyc' pyproject.toml booktools d2l_extras benchmarks \
	  | tar -x -C $(WHEEL_SRC)
	$(PY) -m pip wheel -q --no-deps --no-build-isolation --wheel-dir $(WHEEL_DIR) $(WHEEL_SRC)

book: pages wheel
	$(VENV)/bin/jupyter-book build . $(BUILD_OPTS)

book-student: notebooks wheel
	$(PY) -m booktools student _build/student-src
	mkdir -p _build/student-src/_build && cp -r $(WHEEL_DIR) _build/student-src/_build/
	$(VENV)/bin/jupyter-book build _build/student-src $(BUILD_OPTS)
	rm -rf _build/student && mkdir -p _build/student && mv _build/student-src/_build/html _build/student/html

# The nbgrader course (source/ and release/, one assignment per chapter and framework).
classroom: $(STAMP)
	$(PY) -m booktools classroom _build/classroom

# The PyTorch side on Python 3.13, installed as a hub kernel or a laptop installs it
# (requirements-torch.txt, then `pip install --no-deps d2l==1.0.3`, then the book's wheel), in a
# venv kept in _build/ (a second run reuses it; the first downloads torch, about 3 GB with its
# CUDA libraries). There nbval runs the PyTorch notebooks, and nbgrader builds the course and
# autogrades its PyTorch assignments with the teacher's notebooks (tests/test_compat.py).
COMPAT_VENV := _build/compat-3.13
COMPAT_PY := $(COMPAT_VENV)/bin/python
COMPAT_STAMP := $(COMPAT_VENV)/.installed
# what the checks need beside the install, at the versions of requirements.txt
COMPAT_TOOLS := pytest==9.2.0 nbval==0.11.0 nbgrader==0.9.6 nbclient==0.11.0 nbformat==5.11.1 \
  pyyaml==6.0.4
# python3.13 on PATH (a pyenv shim counts only if it runs), else pyenv's own 3.13
PYTHON313 := $(shell for p in python3.13 $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13*/bin/python3.13; do \
  "$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null \
  && { command -v "$$p"; break; }; done)

$(COMPAT_STAMP): requirements-torch.txt
	@[ -n "$(PYTHON313)" ] || { echo "error: Python 3.13 was not found (python3.13 on PATH, or" \
	  "pyenv's versions/3.13*); install it, e.g. 'pyenv install 3.13'" >&2; exit 1; }
	rm -rf $(COMPAT_VENV)
	$(PYTHON313) -m venv $(COMPAT_VENV)
	$(COMPAT_PY) -m pip install -q -r requirements-torch.txt
	$(COMPAT_PY) -m pip install -q --no-deps d2l==1.0.3
	$(COMPAT_PY) -m pip install -q -c requirements-torch.txt $(COMPAT_TOOLS)
	touch $(COMPAT_STAMP)

# WikiText-2 set once for every kernel, as a teacher does on a hub: in the kernel spec
COMPAT_WIKITEXT2 := $(COMPAT_VENV)/wikitext-2
compat: $(COMPAT_STAMP) wheel
	$(COMPAT_PY) -m pip install -q --no-deps --force-reinstall $(WHEEL_DIR)/*.whl
	$(COMPAT_PY) -c 'from booktools import corpus; corpus.offline_corpus("$(COMPAT_WIKITEXT2)")'
	$(COMPAT_PY) -m ipykernel install --sys-prefix --name python3 \
	  --env D2L_WIKITEXT2_DIR $(CURDIR)/$(COMPAT_WIKITEXT2)
	@$(COMPAT_PY) -I -c 'import sys, torch, d2l_extras; print("make compat: Python", \
	  sys.version.split()[0], "torch", torch.__version__, "d2l_extras from", d2l_extras.__file__)'
	$(COMPAT_PY) -m pytest -q chapters/pytorch tests/test_compat.py

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
	$(PYTEST) -m "not ($(UNIT)) and not classroom and not pdf and not compat"
	@if [ -n "$(PYTHON313)" ]; then $(MAKE) compat; else echo "make compat skipped: no Python" \
	  "3.13 here (python3.13 on PATH or pyenv's versions/3.13*), so the PyTorch side on 3.13 is untested"; fi

bench: $(STAMP)
	$(PY) -m benchmarks
	$(PY) -m benchmarks.scaling

clean:
	rm -rf _build chapters/tabbed
