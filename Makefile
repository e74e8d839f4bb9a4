# Weir: the README's commands. Each target installs what it needs.
SHELL := /bin/bash
CARGO ?= cargo
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run build release test test-deps lint fmt bench bench-log bench-micro clean

run: release
	./target/release/weir serve

release:
	$(CARGO) build --release --bin weir

build:
	$(CARGO) build --workspace

# Everything the tests need from outside Rust: kcat (Debian) and confluent-kafka
# (PyPI, into a venv). Installed only when missing.
test-deps:
	@command -v kcat >/dev/null || { (apt-get update -qq && apt-get install -y -qq kcat) >/dev/null; }
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -c 'import confluent_kafka' 2>/dev/null || $(PY) -m pip install -q 'confluent-kafka>=2.6'

# The last line sums every suite, so a reader of the log sees the real total
# (cargo's last line is the doc-test suite, often "0 passed").
test: test-deps
	@mkdir -p target
	set -o pipefail; $(CARGO) test --workspace 2>&1 | tee target/test-output.log
	@awk '/^test result:/ { p += $$4; f += $$6 } END { printf "%d passed, %d failed\n", p, f }' target/test-output.log

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# The end-to-end scenarios (loadgen/scripts/bench.sh) against a fresh Weir,
# each beside its ceiling measured in the same run, then the log benchmark.
bench:
	$(CARGO) build --release --bin weir --bin weir-loadgen
	bash loadgen/scripts/bench.sh target/release/weir target/release/weir-loadgen
	$(MAKE) bench-log

# Raw glommio DMA writer vs the partition log, same bytes, one run (docs/benchmarks.md).
bench-log:
	$(CARGO) bench -p weir-benches --bench log_append

# Criterion micro-benchmarks: CRC validation, batch parse, builder, index lookup.
bench-micro:
	$(CARGO) bench -p weir-benches --bench protocol --bench index

clean:
	$(CARGO) clean
