#!/usr/bin/env bash
# Installs the Debian packages the test suite drives for real: sox and espeak-ng (test audio,
# e.g. Korean speech for the Korean Vosk model), Chromium and
# its driver (the softphone page), Russian Asterisk prompts (real Russian speech), OpenFst's
# tools (compiling the Korean model's static graph), the runtime libraries of the test Asterisk.
# The product itself needs none of them (OpenFst is optional: `voicebot models compile-graph`).
# Without root it says what is missing and the affected tests skip.
set -euo pipefail
need=()
command -v sox >/dev/null || need+=(sox)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
# -wav holds the prompts; asterisk-core-sounds-ru (only recommended by it) links them as
# sounds/ru and ships their texts, which the Russian WER benchmark reads.
[ -d /usr/share/asterisk/sounds/ru ] || need+=(asterisk-core-sounds-ru-wav asterisk-core-sounds-ru)
command -v fstcompose >/dev/null || need+=(libfst-tools)
# The relocatable Asterisk the Asterisk tests start (../shared/asterisk, its README): its runtime
# libraries (libc6 and libcrypt1 are always there).
for lib in libcurl4 libedit2 libgsm1 libjansson4 libsqlite3-0 libssl3 libuuid1 libxml2 libxslt1.1; do
    dpkg -s "$lib" >/dev/null 2>&1 || need+=("$lib")
done
# the handoff queue's Redis backend: its tests start their own server on a free port
command -v redis-server >/dev/null || need+=(redis-server)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "tests: missing Debian packages: ${need[*]} (install them as root; dependent tests skip)" >&2
    exit 0
fi
echo "tests: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
