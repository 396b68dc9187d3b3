#!/bin/sh
# Regenerates the decoder configuration records in this folder with ffmpeg/ffprobe 5.1
# (Debian 12 build: libx264, libx265, libaom, libopus). Each <name>.<ext> is the raw
# extradata of a short encode (avcC / hvcC / av1C / AudioSpecificConfig / OpusHead) and
# <name>.json is ffprobe's view of the same stream, which the tests use as ground truth.
# Tests read only the committed files; ffmpeg is not needed to run them.
# v and a print several ffmpeg arguments, which the callers split on purpose.
# shellcheck disable=SC2046
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# $1 name, $2 extension, $3 stream selector (v|a), remaining args: ffmpeg encode args
make() {
  name=$1 ext=$2 sel=$3
  shift 3
  out="$tmp/$name.mkv"
  ffmpeg -hide_banner -loglevel error -y "$@" "$out"
  ffprobe -v error -select_streams "$sel" -show_streams -show_data "$out" |
    sed -n '/^extradata=/,/^extradata_size/p' | sed '1d;$d' | xxd -r >"$name.$ext"
  ffprobe -v error -select_streams "$sel" -of json \
    -show_entries stream=codec_name,profile,level,width,height,r_frame_rate,sample_rate,channels,pix_fmt "$out" >"$name.json"
}

v() { echo "-f lavfi -i testsrc2=size=$1:rate=$2 -frames:v 3 -an"; }

# H.264 (Matroska stores the avcC record as CodecPrivate)
make h264_high_320x240 avcc v $(v 320x240 25) -c:v libx264 -profile:v high -pix_fmt yuv420p
make h264_baseline_1280x720 avcc v $(v 1280x720 30) -c:v libx264 -profile:v baseline -pix_fmt yuv420p
make h264_main_1920x1080 avcc v $(v 1920x1080 30000/1001) -c:v libx264 -profile:v main -pix_fmt yuv420p
make h264_high444_426x240 avcc v $(v 426x240 50) -c:v libx264 -profile:v high444 -pix_fmt yuv444p
make h264_high422_640x360 avcc v $(v 640x360 24) -c:v libx264 -profile:v high422 -pix_fmt yuv422p10le
make h264_interlaced_720x576 avcc v $(v 720x576 25) -c:v libx264 -pix_fmt yuv420p -flags +ildct+ilme -x264-params interlaced=1:tff=1
make h264_cqm_352x288 avcc v $(v 352x288 15) -c:v libx264 -profile:v high -pix_fmt yuv420p \
  -x264-params "cqm4=6,13,20,28,13,20,28,32,20,28,32,37,28,32,37,42:cqm8=6,10,13,16,18,23,25,27,10,11,16,18,23,25,27,29,13,16,18,23,25,27,29,31,16,18,23,25,27,29,31,33,18,23,25,27,29,31,33,36,23,25,27,29,31,33,36,38,25,27,29,31,33,36,38,40,27,29,31,33,36,38,40,42"

# HEVC
make hevc_main_320x240 hvcc v $(v 320x240 25) -c:v libx265 -x265-params log-level=none -pix_fmt yuv420p
make hevc_main10_1920x1080 hvcc v $(v 1920x1080 30) -c:v libx265 -x265-params log-level=none -pix_fmt yuv420p10le
make hevc_rext444_426x240 hvcc v $(v 426x240 50) -c:v libx265 -x265-params log-level=none -pix_fmt yuv444p
# Every VUI field before the timing info that x265 writes: extended SAR, overscan, full range, colour
# description, chroma location, default display window, then HRD parameters after the timing
make hevc_vui_2997_640x360 hvcc v $(v 640x360 30000/1001) -vf setsar=5/7 -c:v libx265 -pix_fmt yuv420p \
  -x265-params log-level=none:scaling-list=default:overscan=show:chromaloc=1:display-window=0,0,0,8:hrd=1:vbv-bufsize=2000:vbv-maxrate=1000:range=full:colorprim=bt709:transfer=bt709:colormatrix=bt709
# x265 writes its timing in the SPS VUI only; hevc_metadata writes it into the VPS too, where rtmpd reads it first
make hevc_vps_timing_320x240 hvcc v $(v 320x240 25) -c:v libx265 -x265-params log-level=none -pix_fmt yuv420p -bsf:v hevc_metadata=tick_rate=25/1

# AV1
make av1_320x240 av1c v $(v 320x240 25) -c:v libaom-av1 -cpu-used 8 -pix_fmt yuv420p
make av1_10bit_426x240 av1c v $(v 426x240 30) -c:v libaom-av1 -cpu-used 8 -pix_fmt yuv420p10le

# Audio
a() { echo "-f lavfi -i sine=frequency=440:sample_rate=$1 -t 0.1 -ac $2"; }
make aac_lc_44100_2 asc a $(a 44100 2) -c:a aac
make aac_lc_48000_1 asc a $(a 48000 1) -c:a aac
make aac_lc_22050_6 asc a $(a 22050 6) -c:a aac
# The channels in a program config element (channelConfiguration 0), then ffmpeg's sync extension 0x2b7 with no SBR
make aac_pce_48000_6 asc a $(a 48000 6) -c:a aac -aac_pce 1
make aac_pce_44100_8 asc a $(a 44100 8) -c:a aac -aac_pce 1
make opus_48000_2 opushead a $(a 48000 2) -c:a libopus
