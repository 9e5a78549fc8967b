/**
 * WAV files built byte by byte for tests: the header fields can be set to
 * anything, chunks added in any order, so each test states exactly what is
 * wrong with the file it feeds in.
 */

export interface WavSpec {
  format?: number;
  channels?: number;
  sampleRate?: number;
  bitsPerSample?: number;
  /** Defaults derived from the fields above. */
  blockAlign?: number;
  byteRate?: number;
  /** The samples' bytes (default: `samples` of a 440 Hz tone in the format). */
  data?: Uint8Array;
  samples?: number;
  /** Chunks put between fmt and data (e.g. LIST). */
  before?: Array<{ id: string; body: Uint8Array }>;
  /** Override of the RIFF size field. */
  riffSize?: number;
  /** Override of the data chunk's size field. */
  dataSize?: number;
  /** Write the format as WAVE_FORMAT_EXTENSIBLE with this sub-format. */
  extensible?: boolean;
}

export function chunk(id: string, body: Uint8Array, sizeField = body.length): Buffer {
  const head = Buffer.alloc(8);
  head.write(id, 0, 'latin1');
  head.writeUInt32LE(sizeField, 4);
  // Word alignment: an odd-sized chunk is followed by one pad byte.
  return Buffer.concat([head, body, Buffer.alloc(body.length & 1)]);
}

/** A 440 Hz tone, 16-bit little-endian PCM. */
export function tonePcm16(samples: number, sampleRate: number, amplitude = 8000, hz = 440): Buffer {
  const b = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) b.writeInt16LE(Math.round(amplitude * Math.sin((2 * Math.PI * hz * i) / sampleRate)), i * 2);
  return b;
}

export function wav(spec: WavSpec = {}): Buffer {
  const format = spec.format ?? 1;
  const channels = spec.channels ?? 1;
  const sampleRate = spec.sampleRate ?? 8000;
  const bits = spec.bitsPerSample ?? (format === 1 ? 16 : 8);
  const blockAlign = spec.blockAlign ?? (channels * bits) / 8;
  const byteRate = spec.byteRate ?? sampleRate * blockAlign;
  const samples = spec.samples ?? 800;
  const data = spec.data ?? (format === 1 && bits === 16 ? tonePcm16(samples * channels, sampleRate) : Buffer.alloc(samples * blockAlign, 0xd5));
  const fmt = Buffer.alloc(spec.extensible ? 40 : 16);
  fmt.writeUInt16LE(spec.extensible ? 0xfffe : format, 0);
  fmt.writeUInt16LE(channels, 2);
  fmt.writeUInt32LE(sampleRate, 4);
  fmt.writeUInt32LE(byteRate, 8);
  fmt.writeUInt16LE(blockAlign, 12);
  fmt.writeUInt16LE(bits, 14);
  if (spec.extensible) {
    fmt.writeUInt16LE(22, 16); // cbSize
    fmt.writeUInt16LE(bits, 18); // valid bits
    fmt.writeUInt32LE(channels === 1 ? 4 : 3, 20); // channel mask
    fmt.writeUInt16LE(format, 24); // sub-format GUID, first two bytes: the format tag
    Buffer.from('000000001000800000aa00389b71', 'hex').copy(fmt, 26);
  }
  const body = Buffer.concat([
    Buffer.from('WAVE', 'latin1'),
    chunk('fmt ', fmt),
    ...(spec.before ?? []).map((c) => chunk(c.id, c.body)),
    chunk('data', data, spec.dataSize ?? data.length),
  ]);
  const head = Buffer.alloc(8);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(spec.riffSize ?? body.length, 4);
  return Buffer.concat([head, body]);
}

/** A LIST/INFO chunk as audio editors write it (odd length on purpose, so it needs a pad byte). */
export function listInfo(title: string): { id: string; body: Uint8Array } {
  const text = Buffer.from(`${title}\0`, 'latin1');
  return { id: 'LIST', body: Buffer.concat([Buffer.from('INFO', 'latin1'), chunk('INAM', text).subarray(0, 8 + text.length)]) };
}
