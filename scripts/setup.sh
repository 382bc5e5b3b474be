#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine:
#   scripts/setup.sh            runtime + test dependencies
#   scripts/setup.sh --synth    also the speech synthesizers used to build the training corpus
#   scripts/setup.sh --bench    also the peer recognizers measured in bench/
# Idempotent: packages already present are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

want_synth=0; want_bench=0
for arg in "$@"; do
  case "$arg" in
    --synth) want_synth=1 ;;
    --bench) want_bench=1 ;;
    *) echo "setup.sh: unknown option '$arg' (expected --synth or --bench)" >&2; exit 2 ;;
  esac
done

debs=(libportaudio2 libsndfile1 libspeexdsp1 espeak-ng pulseaudio pulseaudio-utils libasound2-plugins chromium chromium-driver sox mpd mpc)
if [ "$want_synth" = 1 ]; then
  debs+=(flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1 mbrola-de1 mbrola-fr1 fluidsynth fluid-soundfont-gm)
  # corpus v2: accented-English mbrola voices and festival's mbrola voices (us3's festival voice stays out: reserved)
  debs+=(mbrola-de2 mbrola-de3 mbrola-de4 mbrola-de5 mbrola-de6 mbrola-fr4 mbrola-nl2 mbrola-pl1 mbrola-sw1 mbrola-sw2 mbrola-hu1 mbrola-af1 mbrola-ro1 mbrola-gr2 festvox-us1 festvox-us2 festvox-en1)
fi
# bench/barge_in.py: real music under CC BY-SA 3.0 (the held-out and the tuning tracks)
[ "$want_bench" = 1 ] && debs+=(hyperrogue-music singularity-music)

missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  if [ "$want_synth" = 1 ] && ! grep -rqs "non-free" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    # mbrola voices live in Debian's non-free section.
    for f in /etc/apt/sources.list.d/debian.sources; do
      [ -f "$f" ] && $SUDO sed -i 's/^Components: main$/Components: main contrib non-free/' "$f"
    done
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# The CPU build of torch first, so nothing later pulls a CUDA build.
.venv/bin/pip install -q torch==2.13.0
extras="test"
[ "$want_synth" = 1 ] && extras="$extras,synth"
[ "$want_bench" = 1 ] && extras="$extras,bench"
.venv/bin/pip install -q -e ".[$extras]"
# Voice profiles: the speaker encoder's weights ship in resemblyzer's wheel; only that file is read (our own code runs
# it), so none of its requirements are installed (librosa, numba, the Python 2 `typing` backport, webrtcvad from source).
.venv/bin/pip install -q --no-deps "resemblyzer==0.1.4"
if .venv/bin/pip list 2>/dev/null | grep -qiE '^nvidia-|^triton '; then
  echo "setup: a CUDA package was pulled in; refusing to continue" >&2
  exit 1
fi
echo "setup: done"
