#!/bin/sh
# Runs fuzz targets one after another, each as one in-process libFuzzer run
# (no -jobs/-fork: those would move the output to fuzz-N.log files),
# and prints each target's execution count. See docs/fuzzing.md.
#
#   fuzz/run.sh SECONDS [TARGET...]      (no TARGET: every target)
#
# Needs a nightly toolchain and cargo-fuzz. Builds into $CARGO_TARGET_DIR
# (default target/fuzz under the checkout), seeds fuzz/corpus/ from the
# fixtures, writes crashes to fuzz/artifacts/<target>/ and the libFuzzer log
# of each run to fuzz/logs/<target>.log.
set -eu
cd "$(dirname "$0")/.."
seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
if [ $# -eq 0 ]; then
    set -- $(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^polo-fuzz$')
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/fuzz}"
python3 fuzz/seed.py >/dev/null
mkdir -p fuzz/logs
for target in "$@"; do
    case $target in
        ingest_* | owntracks_decrypt) features="--features ingest" ;;
        *) features="" ;;
    esac
    # -s none: no sanitizer (polo forbids unsafe; fuzz/src/lib.rs enforces the
    # 128 MiB heap limit itself). -a: debug assertions and overflow checks.
    # A failing run ends this script (set -e) with its artifact saved.
    cargo +nightly fuzz run -s none -a $features "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -max_len=4096 -timeout=10 \
        -rss_limit_mb=256 -malloc_limit_mb=128 \
        -print_final_stats=1 >"fuzz/logs/$target.log" 2>&1 || {
        echo "$target: FAILED, see fuzz/logs/$target.log"
        tail -n 40 "fuzz/logs/$target.log"
        exit 1
    }
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "fuzz/logs/$target.log" | tail -n 1)
    echo "$target: $execs executions in $seconds s"
done
