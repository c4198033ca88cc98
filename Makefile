# special_qgis — set-up, tests and packaging. See README.md.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PROFILE := .qgis-profile
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := qgis python3-qgis qgis-providers gdal-bin python3-gdal python3-venv python3-pip xvfb xauth
# Your QGIS profiles roots: QGIS 3's and QGIS 4's, whichever exist (QGIS 3's if neither).
USER_PROFILES ?= $(or $(wildcard $(HOME)/.local/share/QGIS/QGIS3 $(HOME)/.local/share/QGIS/QGIS4),\
	$(HOME)/.local/share/QGIS/QGIS3)
# Tests never download anything, and use a throw-away QGIS profile (set in tests/conftest.py).
TEST_ENV := QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1

.PHONY: install system venv profile test test-core lint install-user package clean bench bench-quality \
	bench-products demo screenshots

install: system venv profile

# Debian's QGIS stack. Skipped when already installed, so re-running is fast.
system:
	@if dpkg-query -W -f='$${Status}\n' $(APT_PACKAGES) 2>/dev/null | grep -qv 'install ok installed' \
	    || ! dpkg-query -W $(APT_PACKAGES) >/dev/null 2>&1; then \
	  echo "Installing Debian packages: $(APT_PACKAGES)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends $(APT_PACKAGES); \
	else echo "Debian packages already installed."; fi

# The venv sits on Debian's Python (which sees qgis and osgeo). Re-installs only when
# the requirement files change.
venv: $(VENV)/.installed

# torch's CUDA build alone is about 5.6 GB; pip fails half-way with ENOSPC otherwise.
VENV_NEEDS_MB := 6500

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	@test -x $(PY) && $(PY) -c 'import torch' 2>/dev/null || { \
	  free=$$(df -Pm . | awk 'NR==2 {print $$4}'); \
	  if [ "$$free" -lt $(VENV_NEEDS_MB) ]; then \
	    echo "make install: the virtual environment needs about $(VENV_NEEDS_MB) MB free here ($(CURDIR)), and only $$free MB are. Free some disk space and run make install again." >&2; \
	    exit 1; fi; }
	@test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	@# numpy stays on the major version of Debian's own numpy, the ABI python3-gdal and
	@# python3-qgis were built against (numpy<2 on Debian 12, numpy<3 on Debian 13).
	/usr/bin/python3 -c 'import numpy; print("numpy<%d" % (int(numpy.__version__.split(".")[0]) + 1))' \
	  > $(VENV)/system-constraints.txt
	$(PY) -m pip install --quiet -c constraints.txt -c $(VENV)/system-constraints.txt \
	  -r requirements-dev.txt
	@# Only the package name special_qgis goes on the venv's path, never a bare `core`.
	mkdir -p $(VENV)/src && ln -sfn $(CURDIR)/special_qgis $(VENV)/src/special_qgis
	echo "$(CURDIR)/$(VENV)/src" > $$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/special_qgis.pth
	touch $@

profile:
	$(PY) scripts/install_plugin.py --link $(PROFILE)

# Twice: as QGIS 3.22 runs (GDAL's Python exceptions off), then with them on for the whole
# process, as QGIS 3.40's Processing sets them (tests that run QGIS in a child process once).
test:
	$(TEST_ENV) $(PY) -m pytest
	$(TEST_ENV) $(PY) -m pytest --gdal-exceptions=on

# The engine's tests alone (tests/core), without QGIS: pytest-qgis is switched off.
test-core:
	$(TEST_ENV) $(PY) -m pytest -p no:pytest_qgis tests/core

# The README's pictures, taken by the desktop test (desktop QGIS under Xvfb).
screenshots:
	SPECIAL_SCREENSHOTS=$(CURDIR)/docs/images $(TEST_ENV) $(PY) -m pytest tests/integration/test_desktop.py

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Into your own QGIS profile (a copy, not a link). Start QGIS with scripts/qgis, or make
# torch, open_clip_torch, rasterio and scikit-learn importable by your QGIS's Python.
install-user:
	for root in $(USER_PROFILES); do $(PY) scripts/install_plugin.py --copy "$$root" || exit 1; done

# The plugin ZIP for QGIS's Plugins > Manage and Install Plugins > Install from ZIP: one
# top folder special_qgis/ with core/ and processing_provider/ inside; no tests, no caches.
# Standard library only, so it needs no venv.
package:
	$(if $(wildcard $(PY)),$(PY),python3) scripts/install_plugin.py --zip dist/special_qgis.zip

# The whole job on a generated scene (see scripts/demo.py): make demo [CHECKPOINT=file.pt]
# [MODEL=ViT-B-32]. Offline without weights it says what is missing and stops early.
demo:
	$(PY) scripts/demo.py $(if $(CHECKPOINT),--checkpoint "$(CHECKPOINT)") $(if $(MODEL),--model "$(MODEL)")

clean:
	rm -rf build dist demo $(PROFILE) .qgis-settings .pytest_cache .ruff_cache

# Benchmarks (minutes on a 2-core CPU): pseudo-RGB throughput and memory, stage I speed
# against the matmul rate and memory, stage II seconds per epoch and memory. On a GPU:
# $(PY) bench/bench_stage1.py --device cuda. Stage II's accuracy on five seeded
# scenes, each trained with three SEEDs (about an hour on 2 cores per bench): make
# bench-quality SCENES=real (real EnMAP spectra, real class shares) or SCENES=synthetic
# (earthlib spectra, ten classes of similar size); the real bench needs
# ../shared/data/enmap_berlin or SPECIAL_BERLIN_DATA. The whole pipeline on a
# product-sized scene of each layout (seconds per stage, peak memory; about an hour on 2 cores):
# make bench-products [PRODUCTS=enmap,emit] [SCALE=0.5] [DEVICE=cuda].
bench:
	$(PY) bench/bench_pseudorgb.py
	HF_HUB_OFFLINE=1 $(PY) bench/bench_stage1.py
	$(PY) bench/bench_stage2_speed.py
	$(PY) bench/bench_classify.py

bench-products:
	HF_HUB_OFFLINE=1 $(PY) bench/bench_products.py $(if $(PRODUCTS),--products $(PRODUCTS)) \
		$(if $(SCALE),--scale $(SCALE)) $(if $(DEVICE),--device $(DEVICE))

SCENES ?= real
bench-quality:
	$(PY) bench/bench_stage2_quality.py --scenes $(SCENES) --jobs 2 \
		--json bench/stage2_quality_$(SCENES).json
