#!/bin/sh
# Regenerates the FLV fixtures with ffmpeg/ffprobe 5.1 (Debian 12) and Node 24.
# ffmpeg 5.1 cannot write HEVC/AV1/Opus into FLV, so the Enhanced RTMP files are
# assembled by fixtures.ts from ffprobe's packet dump of an MP4/Ogg encode.
# <name>.keyframes.json lists the presentation timestamps (ms: tag timestamp + composition time) of the
# video frames ffprobe reports key_frame=1 for.
# Tests read only the committed files.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ff() { ffmpeg -hide_banner -loglevel error -y "$@"; }

# Legacy FLV written by ffmpeg: H.264 High + AAC LC 44.1 kHz stereo
ff -f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i sine=frequency=440:sample_rate=44100 -t 1 \
  -c:v libx264 -profile:v high -pix_fmt yuv420p -g 25 -c:a aac -ac 2 -f flv h264_aac.flv
# Legacy FLV: H.264 Main 640x360 (cropped from 368), short GOP + MP3 mono
ff -f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i sine=frequency=440:sample_rate=44100 -t 0.5 \
  -c:v libx264 -profile:v main -pix_fmt yuv420p -g 6 -crf 35 -c:a libmp3lame -ac 1 -f flv h264_mp3.flv
node fixtures.ts keyframes h264_aac.flv
node fixtures.ts keyframes h264_mp3.flv

# Enhanced RTMP: HEVC Main + Opus (open GOP off, keyframe every 10 frames)
ff -f lavfi -i testsrc2=size=320x240:rate=25 -t 1 -c:v libx265 -pix_fmt yuv420p \
  -x265-params log-level=none:keyint=10:min-keyint=10:open-gop=0 "$tmp/hevc.mp4"
ff -f lavfi -i sine=frequency=440:sample_rate=48000 -t 1 -ac 2 -c:a libopus "$tmp/opus.ogg"
node fixtures.ts enhanced hevc_opus.flv "$tmp/hevc.mp4" "$tmp/opus.ogg" hvc1 Opus

# Enhanced RTMP: AV1 (libaom) + AAC LC 48 kHz mono as 'mp4a'
ff -f lavfi -i testsrc2=size=320x240:rate=25 -t 1 -c:v libaom-av1 -cpu-used 8 -g 10 -pix_fmt yuv420p "$tmp/av1.mp4"
ff -f lavfi -i sine=frequency=440:sample_rate=48000 -t 1 -ac 1 -c:a aac "$tmp/aac.mp4"
node fixtures.ts enhanced av1_aac.flv "$tmp/av1.mp4" "$tmp/aac.mp4" av01 mp4a
