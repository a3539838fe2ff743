# Two entry points, both idempotent on a fresh Debian machine:
#   make demo   segment the bundled sample raster with the default model
#   make test   run the test suite (QGIS and the plugin's tests included)
# and for the QGIS plugin:
#   make plugin        build dist/rs_openvocab-VERSION.zip (install it from QGIS's plugin manager)
#   make qgis          open QGIS on a throwaway profile with the plugin, the backend and the sample raster
#   make translations  update the Qt Linguist sources from the tr() strings and build the .qm files
SYS_PYTHON ?= /usr/bin/python3
VENV       := .venv
PY         := $(VENV)/bin/python
PIP        := $(PY) -m pip --disable-pip-version-check
STAMP      := $(VENV)/.installed
DEMO_OUT   := demo-output
# Debian's QGIS for the system Python (the venv sees it through --system-site-packages)
QGIS_DEBS  := python3-qgis qgis xvfb qttools5-dev-tools

.PHONY: venv demo test bench clean plugin qgis translations

$(STAMP): pyproject.toml constraints.txt Makefile
	@$(SYS_PYTHON) -c "import venv, ensurepip" 2>/dev/null || \
	  (apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-venv)
	@$(SYS_PYTHON) -c "import qgis.core" 2>/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(QGIS_DEBS))
	@test -x $(PY) || $(SYS_PYTHON) -m venv --system-site-packages $(VENV)
	$(PIP) install -q --upgrade "pip>=24" "setuptools>=68"
	# sam2 is a source package: SAM2_BUILD_CUDA=0 skips its optional CUDA extension
	SAM2_BUILD_CUDA=0 $(PIP) install -q -c constraints.txt --build-constraint constraints.txt -e ".[test,train,geomag,cluster]"
	@touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(VENV)/bin/rsov segment resources/samples/sample.tif \
	  --classes-file resources/samples/demo_classes.txt \
	  --out-raster $(DEMO_OUT)/classes.tif --out-probs $(DEMO_OUT)/probs.tif \
	  --out $(DEMO_OUT)/polygons.gpkg --preview $(DEMO_OUT)/preview.png --overwrite

test: venv
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

bench: venv
	$(PY) bench/segment_speed.py
	$(PY) bench/streaming.py tiny
	$(PY) bench/streaming.py vit-b16

translations:
	$(SYS_PYTHON) tools/translations.py

plugin: translations
	$(SYS_PYTHON) tools/build_plugin.py

qgis: venv plugin
	$(PY) tools/qgis_sandbox.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache dist build/qgis-sandbox
