#!/usr/bin/env bash
# Builds a libFuzzer target and runs it.
#   Fuzz/run.sh [SECONDS] [TARGET]     TARGET: msrp (default), cpim, sdp, smtp, sip, irc, xmpp, mail, smtpd; SECONDS default 600
# Crashes land in Fuzz/out/; the corpus grows in Fuzz/corpus-run-TARGET/ (seeded
# from Fuzz/corpus/ for msrp, Fuzz/corpus-TARGET/ for the others).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
target=${2:-msrp}
case "$target" in
  msrp) product=MSRPParserFuzz; seeds=Fuzz/corpus; maxlen=8192 ;;
  cpim) product=FormatFuzz; seeds=Fuzz/corpus-cpim; maxlen=4096; export MSRPGW_FUZZ_FORMAT=cpim ;;
  sdp)  product=FormatFuzz; seeds=Fuzz/corpus-sdp; maxlen=4096; export MSRPGW_FUZZ_FORMAT=sdp ;;
  smtp) product=FormatFuzz; seeds=Fuzz/corpus-smtp; maxlen=4096; export MSRPGW_FUZZ_FORMAT=smtp ;;
  sip)  product=FormatFuzz; seeds=Fuzz/corpus-sip; maxlen=4096; export MSRPGW_FUZZ_FORMAT=sip ;;
  irc)  product=FormatFuzz; seeds=Fuzz/corpus-irc; maxlen=4096; export MSRPGW_FUZZ_FORMAT=irc ;;
  xmpp) product=FormatFuzz; seeds=Fuzz/corpus-xmpp; maxlen=8192; export MSRPGW_FUZZ_FORMAT=xmpp ;;
  mail) product=FormatFuzz; seeds=Fuzz/corpus-mail; maxlen=16384; export MSRPGW_FUZZ_FORMAT=mail ;;
  smtpd) product=FormatFuzz; seeds=Fuzz/corpus-smtpd; maxlen=8192; export MSRPGW_FUZZ_FORMAT=smtpd ;;
  *) echo "unknown target $target (msrp, cpim, sdp, smtp, sip, irc, xmpp, mail, smtpd)" >&2; exit 2 ;;
esac
# The sanitizer flags go to every module, not just the fuzz target: libFuzzer's
# coverage guidance only sees code that was compiled with them.
MSRPGW_FUZZ=1 swift build --scratch-path .build-fuzz -c release --product "$product" -Xswiftc -sanitize=fuzzer,address
run=Fuzz/corpus-run-$target
mkdir -p Fuzz/out "$run"
cp -n "$seeds"/* "$run"/ 2>/dev/null || true
exec ".build-fuzz/release/$product" "$run" -max_total_time="$secs" -max_len="$maxlen" \
  -artifact_prefix=Fuzz/out/ -print_final_stats=1
