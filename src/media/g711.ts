/**
 * G.711 (ITU-T Recommendation G.711, 1988) companding, and the conversion
 * of an accepted prompt (wav.ts) into the payload RTP playback sends:
 * 8000 samples of one byte per second, PCMU (payload type 0) or PCMA (8).
 *
 * μ-law: 8 segments of a 14-bit magnitude with bias 33; A-law: 8 segments
 * of a 12-bit magnitude, even bits inverted with 0x55. The stored prompt
 * stays as uploaded; these run when a payload is needed.
 */
import type { WavInfo } from './wav.js';

export type G711Law = 'pcmu' | 'pcma';

/** μ-law bias on the 16-bit scale (33 on the 14-bit scale G.711 Table 2a works in). */
const MULAW_BIAS = 0x84;

/*
 * Both encoders follow ITU-T G.191's reference implementation of G.711
 * (STL g711.c): a negative sample's magnitude is taken as its one's
 * complement (-1 is "negative zero"), so the 16-bit range maps
 * symmetrically onto the 128 codes of each sign. Coders that negate
 * instead (Sun's g711.c, Python's audioop) differ by one step for a few
 * negative inputs; both are inaudible, this one is the Recommendation's own.
 */

/** 16-bit linear sample → μ-law byte. */
export function linearToMulaw(sample: number): number {
  const x = clamp16(sample);
  // 14-bit magnitude plus the bias of 33, clipped to 13 bits.
  const magnitude = Math.min(((x < 0 ? ~x : x) >> 2) + 33, 0x1fff);
  // Segment 1-8: position of the highest set bit above bit 5.
  let segment = 1;
  for (let i = magnitude >> 6; i !== 0; i >>= 1) segment++;
  // Transmitted inverted: all-ones is the quiet value (fewer zeros on T1 lines).
  const code = ((8 - segment) << 4) | (15 - ((magnitude >> segment) & 0x0f));
  return x >= 0 ? code | 0x80 : code;
}

/** μ-law byte → 16-bit linear sample (the middle of its quantization interval). */
export function mulawToLinear(byte: number): number {
  const u = ~byte & 0xff;
  const t = (((u & 0x0f) << 3) + MULAW_BIAS) << ((u & 0x70) >> 4);
  return (u & 0x80) !== 0 ? MULAW_BIAS - t : t - MULAW_BIAS;
}

/** 16-bit linear sample → A-law byte. */
export function linearToAlaw(sample: number): number {
  const x = clamp16(sample);
  // 12-bit magnitude: segment 0 and 1 share a step; above, each segment doubles it.
  let m = (x < 0 ? ~x : x) >> 4;
  if (m > 15) {
    let segment = 1;
    for (; m > 31; m >>= 1) segment++;
    m = (m - 16) + (segment << 4);
  }
  // Sign bit set for positive values, then the even bits inverted (G.711 §2.1).
  return ((x >= 0 ? m | 0x80 : m) ^ 0x55) & 0xff;
}

/** A-law byte → 16-bit linear sample. */
export function alawToLinear(byte: number): number {
  const a = (byte ^ 0x55) & 0xff;
  let t = (a & 0x0f) << 4;
  const segment = (a & 0x70) >> 4;
  if (segment === 0) t += 8;
  else t = (t + 0x108) << (segment - 1);
  return (a & 0x80) !== 0 ? t : -t;
}

function clamp16(n: number): number {
  const i = Math.round(n);
  return i > 32767 ? 32767 : i < -32768 ? -32768 : i;
}

/**
 * Low-pass filter for 16 kHz → 8 kHz: a 31-tap Hamming-windowed sinc with
 * its cutoff at 3.6 kHz, so what lies above the 4 kHz Nyquist frequency of
 * the telephone rate is attenuated instead of folding back as aliasing.
 * Coefficients sum to 1 (unity gain at DC).
 */
const DECIMATION_TAPS = ((): Float64Array => {
  const n = 31;
  const fc = 3600 / 16000;
  const taps = new Float64Array(n);
  const mid = (n - 1) / 2;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = i - mid;
    const sinc = x === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * x) / (Math.PI * x);
    const window = 0.54 - 0.46 * Math.cos((2 * Math.PI * i) / (n - 1));
    taps[i] = sinc * window;
    sum += taps[i] as number;
  }
  for (let i = 0; i < n; i++) taps[i] = (taps[i] as number) / sum;
  return taps;
})();

/** The 16-bit samples of a PCM prompt at 8000 Hz (16 kHz ones filtered and decimated). */
export function pcm16At8k(file: Uint8Array, info: WavInfo): Int16Array {
  const view = new DataView(file.buffer, file.byteOffset + info.dataOffset, info.dataLength);
  const count = info.dataLength / 2;
  const read = (i: number): number => (i < 0 || i >= count ? 0 : view.getInt16(i * 2, true));
  if (info.sampleRate === 8000) {
    const out = new Int16Array(count);
    for (let i = 0; i < count; i++) out[i] = read(i);
    return out;
  }
  const half = (DECIMATION_TAPS.length - 1) / 2;
  const out = new Int16Array(Math.floor(count / 2));
  for (let o = 0; o < out.length; o++) {
    const centre = o * 2;
    let acc = 0;
    for (let k = 0; k < DECIMATION_TAPS.length; k++) acc += (DECIMATION_TAPS[k] as number) * read(centre + k - half);
    out[o] = clamp16(acc);
  }
  return out;
}

/**
 * The RTP payload of a prompt checked by parseWav: one G.711 byte per
 * 8 kHz sample. A prompt already in the wanted law is copied as is;
 * μ-law ↔ A-law goes through the linear value (G.711 Tables 3 and 4 map
 * a few codes differently by one step, inaudibly).
 */
export function toG711(file: Uint8Array, info: WavInfo, law: G711Law): Buffer {
  const data = file.subarray(info.dataOffset, info.dataOffset + info.dataLength);
  if (info.codec === law) return Buffer.from(data);
  const encode = law === 'pcmu' ? linearToMulaw : linearToAlaw;
  if (info.codec === 'pcmu' || info.codec === 'pcma') {
    const decode = info.codec === 'pcmu' ? mulawToLinear : alawToLinear;
    const out = Buffer.allocUnsafe(data.length);
    for (let i = 0; i < data.length; i++) out[i] = encode(decode(data[i] as number));
    return out;
  }
  const samples = pcm16At8k(file, info);
  const out = Buffer.allocUnsafe(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = encode(samples[i] as number);
  return out;
}
