#!/usr/bin/env bash
# Fuzzes every reader sbgm has: builds the libFuzzer harnesses (fuzz/, clang with AddressSanitizer
# and UndefinedBehaviorSanitizer), seeds them with small valid files, and runs each for SECONDS
# (default 60) under a 2 GB RSS limit, with SBGM_MAX_READ_BYTES at 1 GB. A crash, a sanitizer
# report, a hang (-timeout 10 s) or an input over the RSS limit is saved in
# build-fuzz/findings/READER/ and the script exits 1; each becomes a regression test in tests/.
#   scripts/fuzz.sh 1800            # 30 minutes per reader
#   scripts/fuzz.sh 60 npy config   # only these readers
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${SBGM_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
TIME_EACH="${1:-60}"
shift || true
READERS=("$@")
((${#READERS[@]})) || READERS=(npy npz data_file tensor_file checkpoint config)

command -v clang++ >/dev/null || { echo "fuzz.sh: needs clang++ (apt install clang)" >&2; exit 2; }
cmake -S "$ROOT" -B "$BUILD" -DSBGM_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"${SBGM_JOBS:-$(nproc)}" >/dev/null

SBGM_BIN="$ROOT/build/apps/sbgm/sbgm"
[[ -x "$SBGM_BIN" ]] || SBGM_BIN=""
/usr/bin/python3 "$ROOT/fuzz/make_corpus.py" "$BUILD/corpus" $SBGM_BIN

failed=0
for reader in "${READERS[@]}"; do
  findings="$BUILD/findings/$reader"
  mkdir -p "$findings" "$BUILD/corpus/$reader"
  log="$BUILD/fuzz_$reader.log"
  set +e
  SBGM_MAX_READ_BYTES=1000000000 ASAN_OPTIONS=detect_leaks=0 "$BUILD/fuzz/fuzz_$reader" \
    -max_total_time="$TIME_EACH" -print_final_stats=1 -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 -max_len=65536 \
    -artifact_prefix="$findings/" "$BUILD/corpus/$reader" >"$log" 2>&1
  status=$?
  set -e
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  peak=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  found=$(find "$findings" -type f | wc -l)
  echo "$reader: ${TIME_EACH} s, $runs inputs, peak RSS ${peak} MB, $found finding(s), exit $status"
  if ((status != 0 || found > 0)); then failed=1; tail -30 "$log"; fi
done
exit $failed
