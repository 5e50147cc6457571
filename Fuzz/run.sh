#!/usr/bin/env bash
# Builds the libFuzzer target for the MSRP parser and runs it.
#   Fuzz/run.sh [SECONDS]     (default 600)
# Crashes land in Fuzz/out/; the corpus grows in Fuzz/corpus-run/ (seeded from Fuzz/corpus/).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
MSRPGW_FUZZ=1 swift build --scratch-path .build-fuzz -c release --product MSRPParserFuzz
mkdir -p Fuzz/out Fuzz/corpus-run
cp -n Fuzz/corpus/* Fuzz/corpus-run/ 2>/dev/null || true
exec .build-fuzz/release/MSRPParserFuzz Fuzz/corpus-run -max_total_time="$secs" -max_len=8192 \
  -artifact_prefix=Fuzz/out/ -print_final_stats=1
