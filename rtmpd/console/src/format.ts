// How numbers read on the console: short, with units, never NaN.
import type { Stream } from './api.ts';

export function bitrate(kbps: number): string {
  if (kbps >= 10_000) return `${(kbps / 1000).toFixed(0)} Mbps`;
  if (kbps >= 1000) return `${(kbps / 1000).toFixed(1)} Mbps`;
  return `${Math.round(kbps)} kbps`;
}

/** 42s, 12:03, 3:04:05. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${rest}` : `${minutes}:${rest}`;
}

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 100 || unit === 0 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`;
}

export const uptimeSeconds = (stream: Stream, now = Date.now()): number => (now - Date.parse(stream.start_time)) / 1000;

const CODEC_NAMES: Record<string, string> = { h264: 'H.264', hevc: 'HEVC', av1: 'AV1', vp9: 'VP9', aac: 'AAC', opus: 'Opus', mp3: 'MP3' };
export const codecName = (codec: string): string => CODEC_NAMES[codec] ?? codec.toUpperCase();

export function resolution(stream: Stream): string | null {
  const { width, height } = stream.video ?? {};
  return width && height ? `${width}×${height}` : null;
}

export const fps = (value: number | null | undefined): string | null => (value ? `${Number(value.toFixed(1))} fps` : null);

export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

export const channels = (n: number | null): string | null => (n === 1 ? 'mono' : n === 2 ? 'stereo' : n ? `${n} ch` : null);
