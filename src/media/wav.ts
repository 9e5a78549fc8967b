/**
 * WAV (RIFF/WAVE) reading for prompts: what the admin API checks an upload
 * with before storing it, and what later RTP playback reads the samples
 * from. Pure: bytes in, a verdict out, no I/O.
 *
 * Accepted, because these are what a telephone call can carry without a
 * resampler in the media path:
 *   - G.711 μ-law (format 7) and A-law (format 6), 8 bits, 8000 Hz, mono;
 *   - linear PCM (format 1), 16-bit little-endian, 8000 Hz or 16000 Hz, mono
 *     (16 kHz is kept for a future wideband codec; G.711 playback
 *     decimates it, see g711.ts).
 * WAVE_FORMAT_EXTENSIBLE (0xFFFE) headers are read through their
 * sub-format, since some editors write every file that way.
 *
 * Everything else is refused with a reason naming the field and what a
 * prompt must be, so the person uploading knows what to re-export.
 */

export type PromptCodec = 'pcm16' | 'pcmu' | 'pcma';

export interface WavInfo {
  codec: PromptCodec;
  sampleRate: number;
  channels: 1;
  bitsPerSample: 8 | 16;
  /** Whole file, as uploaded. */
  bytes: number;
  /** Audio length, rounded down to the millisecond. */
  durationMs: number;
  /** Where the samples are in the file. */
  dataOffset: number;
  dataLength: number;
}

export type WavVerdict = { ok: true; info: WavInfo } | { ok: false; reason: string };

/** Largest prompt file: 10 MiB (10 minutes of 8 kHz 16-bit PCM is 9.6 MB). */
export const MAX_PROMPT_BYTES = 10 * 1024 * 1024;
/** Longest prompt. An IVR greeting is seconds long; ten minutes is hold music at most. */
export const MAX_PROMPT_DURATION_MS = 10 * 60 * 1000;

const FORMAT_PCM = 1;
const FORMAT_ALAW = 6;
const FORMAT_MULAW = 7;
const FORMAT_EXTENSIBLE = 0xfffe;

const FORMAT_NAMES: Record<number, string> = {
  1: 'PCM', 2: 'Microsoft ADPCM', 3: 'IEEE float', 6: 'A-law', 7: 'μ-law', 0x11: 'IMA ADPCM', 0x31: 'GSM 6.10', 0x50: 'MPEG', 0x55: 'MP3',
};

const WHAT_PROMPTS_ARE = 'prompts must be 8000 Hz mono G.711 (μ-law or A-law) or 16-bit PCM at 8000 or 16000 Hz';

interface Fmt {
  format: number;
  channels: number;
  sampleRate: number;
  byteRate: number;
  blockAlign: number;
  bitsPerSample: number;
}

/** Reads and checks a WAV file; never throws. */
export function parseWav(file: Uint8Array): WavVerdict {
  const fail = (reason: string): WavVerdict => ({ ok: false, reason });
  if (file.length > MAX_PROMPT_BYTES) return fail(`file is ${file.length} bytes: prompts are at most ${MAX_PROMPT_BYTES} bytes`);
  if (file.length < 12) return fail(`file is ${file.length} bytes: too short for a RIFF/WAVE header`);
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const tag = (at: number): string => String.fromCharCode(file[at] ?? 0, file[at + 1] ?? 0, file[at + 2] ?? 0, file[at + 3] ?? 0);
  if (tag(0) !== 'RIFF') {
    return fail(tag(0) === 'RIFX' ? 'big-endian RIFX files are not supported: export little-endian WAV' : 'not a WAV file (no RIFF header)');
  }
  if (tag(8) !== 'WAVE') return fail(`RIFF file of type "${printable(tag(8))}", not WAVE`);
  const riffSize = view.getUint32(4, true);
  if (riffSize < 4) return fail(`RIFF size ${riffSize} is too small for a WAVE file (streamed without its sizes filled in?)`);
  // The RIFF size counts everything after its own field. A file shorter
  // than it says was cut off in transit; trailing bytes beyond it are
  // tolerated (some tools append metadata outside the RIFF chunk).
  if (riffSize + 8 > file.length) return fail(`truncated: the RIFF header says ${riffSize + 8} bytes, the file has ${file.length}`);
  const end = riffSize + 8;

  let fmt: Fmt | undefined;
  let data: { offset: number; length: number } | undefined;
  for (let at = 12; at < end;) {
    if (at + 8 > end) return fail(`truncated: ${end - at} stray byte(s) at offset ${at} where a chunk header should be`);
    const id = tag(at);
    const size = view.getUint32(at + 4, true);
    const body = at + 8;
    if (body + size > end) {
      return fail(id === 'data'
        ? `truncated: the data chunk says ${size} bytes but only ${end - body} follow`
        : `truncated: chunk "${printable(id)}" at offset ${at} says ${size} bytes but only ${end - body} follow`);
    }
    if (id === 'fmt ' && fmt === undefined) {
      if (size < 16) return fail(`fmt chunk is ${size} bytes, needs at least 16`);
      let format = view.getUint16(body, true);
      if (format === FORMAT_EXTENSIBLE) {
        // cbSize (2) + valid bits (2) + channel mask (4), then the sub-format GUID whose first two bytes are the format tag.
        if (size < 40) return fail(`fmt chunk of WAVE_FORMAT_EXTENSIBLE is ${size} bytes, needs 40`);
        format = view.getUint16(body + 24, true);
      }
      fmt = {
        format,
        channels: view.getUint16(body + 2, true),
        sampleRate: view.getUint32(body + 4, true),
        byteRate: view.getUint32(body + 8, true),
        blockAlign: view.getUint16(body + 12, true),
        bitsPerSample: view.getUint16(body + 14, true),
      };
    } else if (id === 'data' && data === undefined) {
      data = { offset: body, length: size };
    }
    // Chunks are word-aligned: an odd-sized chunk is followed by a pad byte.
    // A missing pad after the last chunk is a common writer bug and harmless.
    at = body + size + (size & 1);
    if (at === end + 1) break;
  }
  if (fmt === undefined) return fail('no fmt chunk: the file does not say how its audio is encoded');
  if (data === undefined) return fail('no data chunk: the file has no audio');

  const formatName = FORMAT_NAMES[fmt.format] ?? `format ${fmt.format}`;
  if (fmt.format !== FORMAT_PCM && fmt.format !== FORMAT_ALAW && fmt.format !== FORMAT_MULAW) {
    return fail(`encoding ${formatName}: ${WHAT_PROMPTS_ARE}`);
  }
  if (fmt.channels !== 1) return fail(`${fmt.channels} channels: ${WHAT_PROMPTS_ARE}`);
  const codec: PromptCodec = fmt.format === FORMAT_PCM ? 'pcm16' : fmt.format === FORMAT_MULAW ? 'pcmu' : 'pcma';
  const bits = codec === 'pcm16' ? 16 : 8;
  if (fmt.bitsPerSample !== bits) return fail(`${formatName} with ${fmt.bitsPerSample} bits per sample: ${formatName} prompts must be ${bits}-bit (${WHAT_PROMPTS_ARE})`);
  const rates = codec === 'pcm16' ? [8000, 16000] : [8000];
  if (!rates.includes(fmt.sampleRate)) return fail(`sample rate ${fmt.sampleRate} Hz: ${codec === 'pcm16' ? 'PCM prompts must be 8000 or 16000 Hz mono' : `${formatName} prompts must be 8000 Hz mono`}`);
  // A header whose derived fields disagree was written by something broken; playing it would guess.
  const blockAlign = bits / 8;
  if (fmt.blockAlign !== blockAlign) return fail(`fmt block align ${fmt.blockAlign} does not match ${bits}-bit mono (${blockAlign})`);
  if (fmt.byteRate !== fmt.sampleRate * blockAlign) return fail(`fmt byte rate ${fmt.byteRate} does not match ${fmt.sampleRate} Hz × ${blockAlign} byte(s)`);
  if (data.length === 0) return fail('the data chunk is empty: no audio');
  if (data.length % blockAlign !== 0) return fail(`the data chunk (${data.length} bytes) ends in the middle of a ${bits}-bit sample`);

  const samples = data.length / blockAlign;
  const durationMs = Math.floor((samples * 1000) / fmt.sampleRate);
  if (durationMs > MAX_PROMPT_DURATION_MS) return fail(`${formatDuration(durationMs)} of audio: prompts are at most ${formatDuration(MAX_PROMPT_DURATION_MS)}`);
  return {
    ok: true,
    info: { codec, sampleRate: fmt.sampleRate, channels: 1, bitsPerSample: bits, bytes: file.length, durationMs, dataOffset: data.offset, dataLength: data.length },
  };
}

function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?');
}

function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}
