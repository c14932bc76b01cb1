#!/bin/sh
# Builds the fuzz targets, then runs them one after another, each as one
# in-process libFuzzer run (no -jobs/-fork, which would also move the output
# into fuzz-N.log files), and prints each target's execution count.
# See docs/fuzzing.md.
#
#   fuzz/run.sh SECONDS [TARGET...]      (no TARGET: every target)
#
# Needs a nightly toolchain and cargo-fuzz. Builds into $CARGO_TARGET_DIR
# (default target/fuzz under the checkout); the ingest targets build the whole
# server, web app included (set POLO_WEB_DIST to skip npm). Seeds
# fuzz/corpus/ from the fixtures, saves failing inputs in
# fuzz/artifacts/<target>/ and each run's libFuzzer log in fuzz/logs/<target>.log.
set -eu
cd "$(dirname "$0")/.."
seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
if [ $# -eq 0 ]; then
    set -- $(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^polo-fuzz$')
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/fuzz}"
bin="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release"
ingest=no
for target in "$@"; do
    case $target in ingest_* | owntracks_decrypt) ingest=yes ;; esac
done
# Everything is built before the first run: no fuzzer shares the cores with a build.
# -s none: no sanitizer (polo denies unsafe outside one malloc_trim call in the binary; fuzz/src/lib.rs enforces the 128 MiB
# heap limit itself). -a: debug assertions and overflow checks.
# POLO_FUZZ_NO_BUILD=1 runs what was built before.
if [ -z "${POLO_FUZZ_NO_BUILD:-}" ]; then
    (cd fuzz && cargo +nightly fuzz build -s none -a)
    if [ $ingest = yes ]; then
        (cd fuzz && cargo +nightly fuzz build -s none -a --features ingest)
    fi
fi
python3 fuzz/seed.py >/dev/null
mkdir -p fuzz/logs
failed=""
for target in "$@"; do
    mkdir -p "fuzz/artifacts/$target"
    # A failing run is reported (its input saved as an artifact) and the next target runs.
    "$bin/$target" -artifact_prefix="fuzz/artifacts/$target/" "fuzz/corpus/$target" \
        -max_total_time="$seconds" -max_len=4096 -timeout=10 \
        -rss_limit_mb=256 -malloc_limit_mb=128 \
        -print_final_stats=1 >"fuzz/logs/$target.log" 2>&1 || {
        echo "$target: FAILED, see fuzz/logs/$target.log"
        grep -E "panicked|==polo-fuzz==|ERROR: libFuzzer|Test unit written" "fuzz/logs/$target.log" | head -n 5
        failed="$failed $target"
        continue
    }
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "fuzz/logs/$target.log" | tail -n 1)
    echo "$target: $execs executions in $seconds s"
done
if [ -n "$failed" ]; then
    echo "failed:$failed"
    exit 1
fi
