# Weir: the README's commands. Each target installs what it needs.
SHELL := /bin/bash
CARGO ?= cargo
VENV := .venv
PY := $(VENV)/bin/python
# Where cargo puts the binaries: a user's CARGO_TARGET_DIR (or CARGO_BUILD_TARGET_DIR,
# cargo's config variable) moves them out of ./target.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CARGO_BUILD_TARGET_DIR),target)

.PHONY: run build release test test-deps lint fmt bench bench-deps bench-targets bench-log bench-metrics bench-share bench-delay bench-micro bench-peak clean compat-matrix

run: release
	$(TARGET_DIR)/release/weir serve

release:
	$(CARGO) build --release --bin weir

build:
	$(CARGO) build --workspace

# Everything the tests need from outside Rust: kcat and the PostgreSQL server (Debian;
# weir-drain's tests run their own throwaway cluster), confluent-kafka,
# kafka-python with its C CRC-32C (PyPI, into a venv; without crc32c it checksums in pure
# Python at ~3 MB/s) and aiokafka; kafkajs (npm, into broker/tests/clients/node_modules,
# pinned by its package-lock.json); Go with Debian's sarama and kafka-go (the
# compatibility suite builds its Go program offline from /usr/share/gocode). Installed
# only when missing.
GO_DEBS := golang-go golang-github-shopify-sarama-dev golang-github-segmentio-kafka-go-dev
test-deps:
	@command -v kcat >/dev/null || { (apt-get update -qq && apt-get install -y -qq kcat) >/dev/null; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { (apt-get update -qq && apt-get install -y -qq postgresql) >/dev/null; }
	@{ command -v go >/dev/null && test -d /usr/share/gocode/src/github.com/Shopify/sarama \
	  && test -d /usr/share/gocode/src/github.com/segmentio/kafka-go; } \
	  || { (apt-get update -qq && apt-get install -y -qq $(GO_DEBS)) >/dev/null; } \
	  || echo "SKIPPED: $(GO_DEBS) could not be installed; the compatibility suite runs without its Go columns"
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -c 'import confluent_kafka' 2>/dev/null || $(PY) -m pip install -q 'confluent-kafka>=2.6'
	@$(PY) -c 'import kafka, crc32c' 2>/dev/null || $(PY) -m pip install -q 'kafka-python[crc32c]>=3.0'
	@$(PY) -c 'import aiokafka' 2>/dev/null || $(PY) -m pip install -q 'aiokafka>=0.11'
	@test -d broker/tests/clients/node_modules/kafkajs || npm ci -s --no-audit --no-fund --prefix broker/tests/clients

# The last line sums every suite, so a reader of the log sees the real total
# (cargo's last line is the doc-test suite, often "0 passed").
# The suite runs under cargo-nextest when it is installed (it is on these machines): each
# test is its own process and tests of different binaries overlap, which about halves the
# wall time on two cores (.config/nextest.toml says which tests run alone and why).
# Without nextest, plain `cargo test` runs the same tests one binary at a time.
test: test-deps
	@mkdir -p target
	set -o pipefail; if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --workspace --no-fail-fast 2>&1 | tee target/test-output.log && \
	  $(CARGO) test --workspace --doc 2>&1 | tee -a target/test-output.log; \
	else $(CARGO) test --workspace --no-fail-fast 2>&1 | tee target/test-output.log; fi
	$(MAKE) fuzz-smoke
	@awk '/^test result:/ { p += $$4; f += $$6 } \
	  /Summary \[/ { for (i = 2; i <= NF; i++) { if ($$i ~ /^passed/) p += $$(i-1); if ($$i ~ /^failed/) f += $$(i-1) } } \
	  END { printf "%d passed, %d failed\n", p, f }' target/test-output.log

# Reruns the compatibility suite and rewrites the client x operation matrix in
# docs/protocol.md from its results (broker/tests/compat.rs).
compat-matrix: test-deps
	WEIR_UPDATE_COMPAT_MATRIX=1 $(CARGO) test -p weir-broker --test compat

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# Issue 13's targets in one table first (bench-targets), then the end-to-end
# scenarios (loadgen/workloads/*.toml, run by loadgen/scripts/bench.sh) against a
# fresh Weir, each beside the ceilings measured in the same run (loopback TCP,
# O_DIRECT disk, and the generator's own produce and consume ceilings:
# weir-loadgen self-check), then the log benchmark and the rest.
# QUICK=1: only the targets table, short runs and small sizes (a few minutes).
# BASELINE=<git rev>: the table also runs that revision's release weir (built in a
# worktree under target/), alternating with this build, in the same run.
QUICK ?= 0
BASELINE ?=
bench:
	$(MAKE) bench-targets
	@if [ "$(QUICK)" != 1 ]; then \
	  bash loadgen/scripts/bench.sh $(TARGET_DIR)/release/weir $(TARGET_DIR)/release/weir-loadgen \
	  && $(MAKE) bench-metrics && $(MAKE) bench-share && $(MAKE) bench-log && $(MAKE) bench-delay; fi

# What bench-targets needs besides Rust: fio (the disk ceilings), kcat (the
# librdkafka catch-up reader), confluent-kafka (the many-topics client, in .venv).
bench-deps:
	@command -v fio >/dev/null || { (apt-get update -qq && apt-get install -y -qq fio) >/dev/null; }
	@command -v kcat >/dev/null || { (apt-get update -qq && apt-get install -y -qq kcat) >/dev/null; }
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -c 'import confluent_kafka' 2>/dev/null || $(PY) -m pip install -q 'confluent-kafka>=2.6'

# Issue 13's table (docs/benchmarks.md, "Issue 13 targets"); loadgen/scripts/targets.sh
# lists the knobs (ROUNDS, CATCHUP_BYTES, BACKLOG_GB, SCALE_TOPICS, ONLY, ...).
# The baseline is built first: it shares the target dir, and the current build
# after it puts this tree's binary back in $(TARGET_DIR)/release.
bench-targets: bench-deps
	@base=""; if [ -n "$(BASELINE)" ]; then base=$$(bash loadgen/scripts/baseline-build.sh "$(BASELINE)" $(TARGET_DIR)) || exit 1; fi; \
	  $(CARGO) build --release --bin weir --bin weir-loadgen && \
	  QUICK=$(QUICK) BASELINE_REV="$(BASELINE)" PY=$(PY) bash loadgen/scripts/targets.sh \
	    $(TARGET_DIR)/release/weir $(TARGET_DIR)/release/weir-loadgen $$base

# The metrics endpoint's cost: produce with it off and on (scraped every second),
# alternating, in one run (docs/benchmarks.md, "Metrics").
bench-metrics:
	$(CARGO) build --release --bin weir --bin weir-loadgen
	bash loadgen/scripts/metrics-cost.sh $(TARGET_DIR)/release/weir $(TARGET_DIR)/release/weir-loadgen

# Share group vs classic group consume, same client and topic, one run (docs/benchmarks.md).
bench-share:
	$(CARGO) build --release --bin weir
	bash loadgen/scripts/share-vs-classic.sh $(TARGET_DIR)/release/weir

# Delayed delivery: plain vs delayed produce MB/s in one run, broker RSS growth
# with 1,000,000 pending timers, firing lateness at 50,000 timers/s
# (docs/benchmarks.md, "Delayed delivery").
bench-delay:
	$(CARGO) build --release --bin weir --bin delay-bench
	bash loadgen/scripts/delay-bench.sh $(TARGET_DIR)/release/weir $(TARGET_DIR)/release/delay-bench

# The flash-sale scenario (docs/peak-shaving.md): a burst of orders at 10x the
# drain cap for 30 s into Weir, drained into a throwaway PostgreSQL by weir-drain,
# beside the same burst written straight to PostgreSQL by pgbench, and the
# backlog-bound variant and the unpaid-order timeout (delayed delivery).
# Reports in target/bench-peak/ (peak.html, peak.json, summary.md).
# PEAK_FLAGS="--burst 5" for a quick run; benches/peak/peak.py --help for the rest.
PEAK_FLAGS ?=
bench-peak: test-deps
	$(CARGO) build --release --bin weir --bin weir-loadgen --bin weir-drain
	$(PY) benches/peak/peak.py --weir $(TARGET_DIR)/release/weir \
	  --loadgen $(TARGET_DIR)/release/weir-loadgen --drain $(TARGET_DIR)/release/weir-drain \
	  --out $(TARGET_DIR)/bench-peak $(PEAK_FLAGS)

# Raw glommio DMA writer vs the partition log, same bytes, one run (docs/benchmarks.md).
bench-log:
	$(CARGO) bench -p weir-benches --bench log_append

# Criterion micro-benchmarks: CRC validation, batch parse, builder, index lookup.
bench-micro:
	$(CARGO) bench -p weir-benches --bench protocol --bench index

clean:
	$(CARGO) clean

# Reliability (docs/reliability.md). crash-test: the kill -9 harness, 100 cycles on a
# release build, and the power-loss scenario on a loop device, 30 cycles (`make test`
# runs 20 and 10 in debug). fuzz: coverage-guided cargo-fuzz
# (libFuzzer) per target for FUZZ_SECONDS each, on stable via RUSTC_BOOTSTRAP;
# fuzz-smoke: the stable in-process mutation fuzzer over the same targets (CI).
CRASH_CYCLES ?= 100
CRASH_VERIFY_EVERY ?= 2
POWER_CYCLES ?= 30
FUZZ_SECONDS ?= 120
FUZZ_SMOKE_SECONDS ?= 20
FRAME_SEEDS := ../protocol/tests/fixtures/frames
BATCH_SEEDS := ../protocol/tests/fixtures/record-batches
FUZZ_RUN = RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --sanitizer none
FUZZ_FLAGS = -max_total_time=$(FUZZ_SECONDS) -max_len=1048576 -rss_limit_mb=2048 -print_final_stats=1
SMOKE_RUN = $(CARGO) run -q --release --bin

.PHONY: crash-test fuzz fuzz-deps fuzz-smoke
crash-test:
	WEIR_TEST_DEADLINE_SECS=3600 WEIR_CRASH_CYCLES=$(CRASH_CYCLES) WEIR_CRASH_CYCLES_ACKS1=20 WEIR_CRASH_VERIFY_EVERY=$(CRASH_VERIFY_EVERY) WEIR_POWER_CYCLES=$(POWER_CYCLES) $(CARGO) test --release -p weir-broker --test crash -- --nocapture --test-threads 1

fuzz-deps:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked

fuzz: fuzz-deps
	mkdir -p fuzz/corpus/request fuzz/corpus/record_batch
	cd fuzz && $(FUZZ_RUN) request corpus/request $(FRAME_SEEDS) regressions/request -- $(FUZZ_FLAGS)
	cd fuzz && $(FUZZ_RUN) record_batch corpus/record_batch $(BATCH_SEEDS) regressions/record_batch -- $(FUZZ_FLAGS)

fuzz-smoke:
	cd fuzz && $(SMOKE_RUN) request -- --seconds $(FUZZ_SMOKE_SECONDS) --seeds $(FRAME_SEEDS) --seeds regressions/request
	cd fuzz && $(SMOKE_RUN) record_batch -- --seconds $(FUZZ_SMOKE_SECONDS) --seeds $(BATCH_SEEDS) --seeds regressions/record_batch
