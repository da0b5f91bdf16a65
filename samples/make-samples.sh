#!/usr/bin/env bash
# Makes the sample calls in samples/ with espeak-ng and ffmpeg. They are
# committed, so this only needs to run again if you change them.
#
#   bash samples/make-samples.sh
#
# The output is deterministic for given espeak-ng and ffmpeg builds. Convention
# (imagicle-api.md): in stereo, left = local party (the agent), right =
# remote party (the customer). jsondata.json is written by hand, not by this
# script.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
for tool in espeak-ng ffmpeg ffprobe awk; do
  command -v "$tool" >/dev/null 2>&1 || { echo "make-samples: '$tool' not found on PATH" >&2; exit 1; }
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }
EXACT=(-map_metadata -1 -fflags +bitexact -flags:a +bitexact -threads 1)

# say NAME VOICE TEXT: speech into $tmp/NAME.wav (22.05 kHz mono, 175 words/min)
say() { espeak-ng -v "$2" -s 175 -w "$tmp/$1.wav" "$3"; }
seconds() { ffprobe -v error -show_entries format=duration -of csv=p=0 "$tmp/$1.wav"; }

# turns FIRST SECOND: the first speaker starts at 0.25 s, the second 0.3 s
# after the first stops, the call ends 0.4 s after the second stops.
# Sets FIRST_MS, SECOND_MS (start offsets, for adelay) and TOTAL (seconds).
turns() {
  local a b
  a="$(seconds "$1")"
  b="$(seconds "$2")"
  FIRST_MS=250
  SECOND_MS="$(awk -v a="$a" 'BEGIN { printf "%d", (0.25 + a + 0.3) * 1000 }')"
  TOTAL="$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", 0.25 + a + 0.3 + b + 0.4 }')"
}

# Filter graph pieces: place input N at its start time, pad with silence.
at() { echo "[$1:a]adelay=$2:all=1,apad"; }

# --- call-stereo.opus: outgoing call, two parties on two channels, Opus 48 kHz
say agent1 en-us "Hello, Giuliano from customer care, about your order."
say customer1 en-gb+f3 "Oh, hi! It still hasn't arrived."
turns agent1 customer1
ff -i "$tmp/agent1.wav" -i "$tmp/customer1.wav" \
  -filter_complex "$(at 0 "$FIRST_MS")[l];$(at 1 "$SECOND_MS")[r];[l][r]join=inputs=2:channel_layout=stereo[out]" \
  -map '[out]' -t "$TOTAL" -ar 48000 -c:a libopus -b:a 32k -application voip "${EXACT[@]}" call-stereo.opus

# --- call-gsm.gsm: a PBX's mixed mono recording, telephone band, raw GSM 06.10 8 kHz
say agent2 en-us+m3 "Thanks for calling. Your ticket is four two seven."
say customer2 en-gb+f2 "Great, I'll call back tomorrow."
turns agent2 customer2
ff -i "$tmp/agent2.wav" -i "$tmp/customer2.wav" \
  -filter_complex "$(at 0 "$FIRST_MS")[a];$(at 1 "$SECOND_MS")[b];[a][b]amix=inputs=2:normalize=0,highpass=f=300,lowpass=f=3400[out]" \
  -map '[out]' -t "$TOTAL" -ar 8000 -ac 1 -c:a libgsm "${EXACT[@]}" -f gsm call-gsm.gsm

# --- call-aac.m4a: a mixed mono call in Italian, AAC-LC 16 kHz
say agent3 it "Imagicle, buongiorno. Come posso aiutarla?"
say customer3 it+f3 "Buongiorno, vorrei spostare l'appuntamento di domani."
turns agent3 customer3
ff -i "$tmp/agent3.wav" -i "$tmp/customer3.wav" \
  -filter_complex "$(at 0 "$FIRST_MS")[a];$(at 1 "$SECOND_MS")[b];[a][b]amix=inputs=2:normalize=0[out]" \
  -map '[out]' -t "$TOTAL" -ar 16000 -ac 1 -c:a aac -b:a 32k "${EXACT[@]}" call-aac.m4a

# --- agent-leg.wav + customer-leg.ogg: the two legs of one call, recorded
# separately, equally long and aligned in time
say agent4 en-us "Hi, I'm calling to confirm Friday's appointment."
say customer4 en-gb+f4 "Yes, ten o'clock is perfect, thanks."
turns agent4 customer4
ff -i "$tmp/agent4.wav" -filter_complex "$(at 0 "$FIRST_MS")[out]" \
  -map '[out]' -t "$TOTAL" -ar 8000 -ac 1 -c:a pcm_s16le "${EXACT[@]}" agent-leg.wav
ff -i "$tmp/customer4.wav" -filter_complex "$(at 0 "$SECOND_MS")[out]" \
  -map '[out]' -t "$TOTAL" -ar 16000 -ac 1 -c:a libvorbis -q:a 1 "${EXACT[@]}" customer-leg.ogg

for f in call-stereo.opus call-aac.m4a agent-leg.wav customer-leg.ogg; do
  ffprobe -v error -select_streams a:0 -show_entries stream=codec_name,sample_rate,channels:format=duration \
    -of compact=p=0:nk=0 "file:$f" | tr '\n' ' ' | sed "s|^|$f: |"
  echo
done
echo "call-gsm.gsm: $(ffprobe -v error -f gsm -show_entries format=duration -of csv=p=0 file:call-gsm.gsm) s"
du -cb call-stereo.opus call-gsm.gsm call-aac.m4a agent-leg.wav customer-leg.ogg jsondata.json 2>/dev/null | tail -1
