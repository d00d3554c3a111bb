# Two commands do everything on a fresh clone (they create .venv and install what they need):
#   make figures   regenerate every figure (executes all notebooks with papermill)
#   make test      unit tests + pytest --nbval over the notebooks + a smoke run of every notebook
# Each notebook shows the largest profile whose results exist (full > cpu > smoke); PROFILE=smoke|cpu|full forces one.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PROFILE ?= best
TMP    ?= $(shell mktemp -d 2>/dev/null || echo /tmp/thesis_lib_ci)

# The offline CIFAR-10 copy beside the repo (development machines and CI); users without it get
# torchvision's download into ./data.
OFFLINE_CIFAR := $(abspath $(wildcard ../shared/data/cifar10-jpeg.tar.gz))
ifneq ($(OFFLINE_CIFAR),)
export THESIS_DATA ?= $(OFFLINE_CIFAR)
endif
export OMP_NUM_THREADS ?= 2
export MPLBACKEND := Agg

.PHONY: setup figures test lint notebook-sources test-unit test-notebooks test-smoke benchmarks clean notebook-sources

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -c "import torch, torchvision, thesis_lib; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'cuda', torch.cuda.is_available())"
	touch $@

setup: $(VENV)/.installed

figures: setup
	$(PY) -m thesis_lib.reporting.notebooks --profile $(PROFILE)

test: lint test-unit test-notebooks test-smoke

# ruff (configured in pyproject.toml): lint, and formatting checked (`ruff format` fixes it)
lint: setup
	$(VENV)/bin/ruff check thesis_lib tests benchmarks
	$(VENV)/bin/ruff format --check thesis_lib tests benchmarks

# notebooks/NN_topic.py (jupytext pair, the reviewed source) agrees with its .ipynb, headers and README table with
# the registry (test-unit runs the same checks: tests/test_notebook_sources.py)
notebook-sources: setup
	$(PY) -m thesis_lib.notebook_sources

test-unit: setup
	THESIS_NO_PROGRESS=1 $(PY) -m pytest -q -m "not slow" tests

test-notebooks: setup
	THESIS_NO_PROGRESS=1 $(PY) -m pytest -q --nbval --nbval-current-env notebooks --nbval-sanitize-with notebooks/sanitize.cfg

test-smoke: setup
	THESIS_NO_PROGRESS=1 $(PY) -m thesis_lib.reporting.notebooks --profile smoke \
		--results-dir $(TMP)/results --figures-dir $(TMP)/figures --output-dir $(TMP)/notebooks

benchmarks: setup
	$(PY) benchmarks/bench_kaf.py
	$(PY) benchmarks/bench_data_pipeline.py
	$(PY) benchmarks/bench_attacks.py
	$(PY) benchmarks/bench_train.py --rounds 3 --steps 2 --measure-epoch resnet20:relu,resnet20:kaf
	$(PY) benchmarks/bench_attack_precision.py --epochs 2 --train-subset 20000
	$(PY) benchmarks/bench_bf16_accuracy.py --epochs 2

clean:
	rm -rf $(VENV) .cache
