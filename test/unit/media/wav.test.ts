import t from 'tap';
import { MAX_PROMPT_BYTES, MAX_PROMPT_DURATION_MS, parseWav, type WavVerdict } from '../../../src/media/wav.js';
import { chunk, listInfo, tonePcm16, wav } from '../../helpers/wav-builder.js';

function reason(v: WavVerdict): string {
  return v.ok ? '(accepted)' : v.reason;
}

t.test('accepted formats report codec, rate, duration, size and where the samples are', async (t) => {
  const pcm = wav({ samples: 8000 });
  t.strictSame(parseWav(pcm), {
    ok: true,
    info: { codec: 'pcm16', sampleRate: 8000, channels: 1, bitsPerSample: 16, bytes: pcm.length, durationMs: 1000, dataOffset: 44, dataLength: 16000 },
  }, '1 s of 8 kHz PCM');
  t.equal(pcm.length, 44 + 16000, 'canonical 44-byte header');

  const ulaw = wav({ format: 7, samples: 4000 });
  t.strictSame(parseWav(ulaw), {
    ok: true,
    info: { codec: 'pcmu', sampleRate: 8000, channels: 1, bitsPerSample: 8, bytes: ulaw.length, durationMs: 500, dataOffset: 44, dataLength: 4000 },
  }, '0.5 s of μ-law');

  const alaw = wav({ format: 6, samples: 12345 });
  t.match(parseWav(alaw), { ok: true, info: { codec: 'pcma', durationMs: 1543, dataLength: 12345 } }, 'A-law, odd length, duration rounded down (12345/8 = 1543.1)');

  const wide = wav({ sampleRate: 16000, samples: 16000 * 3 });
  t.match(parseWav(wide), { ok: true, info: { codec: 'pcm16', sampleRate: 16000, durationMs: 3000 } }, '16 kHz PCM');

  const ext = wav({ format: 7, extensible: true, samples: 800 });
  t.match(parseWav(ext), { ok: true, info: { codec: 'pcmu', durationMs: 100, dataOffset: 12 + 8 + 40 + 8 } }, 'WAVE_FORMAT_EXTENSIBLE read through its sub-format');
});

t.test('LIST and other chunks before data are skipped, padding included', async (t) => {
  const list = listInfo('Welcome!');
  t.equal(list.body.length % 2, 1, 'the LIST chunk has an odd size, so a pad byte follows it');
  const file = wav({ samples: 80, before: [list, { id: 'fact', body: Buffer.from([80, 0, 0, 0]) }] });
  const v = parseWav(file);
  const dataOffset = 12 + (8 + 16) + (8 + list.body.length + 1) + (8 + 4) + 8;
  t.strictSame(v, { ok: true, info: { codec: 'pcm16', sampleRate: 8000, channels: 1, bitsPerSample: 16, bytes: file.length, durationMs: 10, dataOffset, dataLength: 160 } });
  // The samples found are the samples written.
  if (v.ok) t.strictSame(file.subarray(v.info.dataOffset, v.info.dataOffset + v.info.dataLength), tonePcm16(80, 8000));
});

t.test('data before fmt, and trailing bytes after the RIFF chunk, are tolerated', async (t) => {
  const fmt = Buffer.alloc(16);
  fmt.writeUInt16LE(7, 0); fmt.writeUInt16LE(1, 2); fmt.writeUInt32LE(8000, 4); fmt.writeUInt32LE(8000, 8); fmt.writeUInt16LE(1, 12); fmt.writeUInt16LE(8, 14);
  const body = Buffer.concat([Buffer.from('WAVE'), chunk('data', Buffer.alloc(801, 0xff)), chunk('fmt ', fmt)]);
  const head = Buffer.alloc(8); head.write('RIFF'); head.writeUInt32LE(body.length, 4);
  const file = Buffer.concat([head, body, Buffer.from('id3 junk after the RIFF chunk')]);
  t.match(parseWav(file), { ok: true, info: { codec: 'pcmu', dataOffset: 20, dataLength: 801, durationMs: 100, bytes: file.length } });
});

t.test('an odd last chunk without its pad byte is accepted (a common writer bug)', async (t) => {
  const padded = wav({ format: 6, samples: 801 });
  t.equal(padded.length % 2, 0);
  const unpadded = padded.subarray(0, padded.length - 1);
  unpadded.writeUInt32LE(unpadded.length - 8, 4);
  t.match(parseWav(unpadded), { ok: true, info: { codec: 'pcma', dataLength: 801 } });
});

t.test('refusals name what is wrong', async (t) => {
  const cases: Array<[string, Buffer, string | RegExp]> = [
    ['stereo', wav({ channels: 2 }), '2 channels: prompts must be 8000 Hz mono G.711 (μ-law or A-law) or 16-bit PCM at 8000 or 16000 Hz'],
    ['44.1 kHz', wav({ sampleRate: 44100 }), 'sample rate 44100 Hz: PCM prompts must be 8000 or 16000 Hz mono'],
    ['16 kHz μ-law', wav({ format: 7, sampleRate: 16000 }), 'sample rate 16000 Hz: μ-law prompts must be 8000 Hz mono'],
    ['8-bit PCM', wav({ bitsPerSample: 8, data: Buffer.alloc(100, 0x80) }), /^PCM with 8 bits per sample: PCM prompts must be 16-bit/],
    ['24-bit PCM', wav({ bitsPerSample: 24, data: Buffer.alloc(300) }), /^PCM with 24 bits per sample/],
    ['IEEE float', wav({ format: 3, bitsPerSample: 32, data: Buffer.alloc(400) }), /^encoding IEEE float: prompts must be/],
    ['MP3 in WAV', wav({ format: 0x55, bitsPerSample: 0, blockAlign: 1, data: Buffer.alloc(10) }), /^encoding MP3:/],
    ['ADPCM', wav({ format: 0x11, bitsPerSample: 4, blockAlign: 256, data: Buffer.alloc(512) }), /^encoding IMA ADPCM:/],
    ['inconsistent block align', wav({ blockAlign: 4 }), 'fmt block align 4 does not match 16-bit mono (2)'],
    ['inconsistent byte rate', wav({ byteRate: 8000 }), 'fmt byte rate 8000 does not match 8000 Hz × 2 byte(s)'],
    ['empty data', wav({ data: Buffer.alloc(0) }), 'the data chunk is empty: no audio'],
    ['half a sample', wav({ data: Buffer.alloc(161) }), 'the data chunk (161 bytes) ends in the middle of a 16-bit sample'],
    ['not RIFF', Buffer.from('ID3\u0004this is an mp3 file, honest'), 'not a WAV file (no RIFF header)'],
    ['RIFX', Buffer.concat([Buffer.from('RIFX'), wav().subarray(4)]), /^big-endian RIFX/],
    ['AVI', Buffer.concat([wav().subarray(0, 8), Buffer.from('AVI '), wav().subarray(12)]), 'RIFF file of type "AVI ", not WAVE'],
    ['too short', Buffer.from('RIFF'), 'file is 4 bytes: too short for a RIFF/WAVE header'],
    ['empty', Buffer.alloc(0), 'file is 0 bytes: too short for a RIFF/WAVE header'],
    ['no fmt', Buffer.concat([Buffer.from('RIFF'), Buffer.from([20, 0, 0, 0]), Buffer.from('WAVE'), chunk('data', Buffer.alloc(8))]), /^no fmt chunk/],
    ['no data', (() => { const w = wav(); const cut = w.subarray(0, 36); cut.writeUInt32LE(28, 4); return cut; })(), /^no data chunk/],
    ['short fmt', Buffer.concat([Buffer.from('RIFF'), Buffer.from([20, 0, 0, 0]), Buffer.from('WAVE'), chunk('fmt ', Buffer.alloc(8))]), 'fmt chunk is 8 bytes, needs at least 16'],
    ['streamed, sizes never filled in', wav({ riffSize: 0 }), /^RIFF size 0 is too small/],
  ];
  for (const [name, file, expected] of cases) {
    const v = parseWav(file);
    t.equal(v.ok, false, `${name}: refused`);
    if (typeof expected === 'string') t.equal(reason(v), expected, name);
    else t.match(reason(v), expected, name);
  }
});

t.test('truncated files and sizes larger than the file', async (t) => {
  const whole = wav({ samples: 8000 });
  const cut = whole.subarray(0, 10_000);
  t.equal(reason(parseWav(cut)), `truncated: the RIFF header says ${whole.length} bytes, the file has 10000`, 'cut in transit');

  const lying = wav({ samples: 100, dataSize: 1_000_000 });
  t.equal(reason(parseWav(lying)), 'truncated: the data chunk says 1000000 bytes but only 200 follow', 'data size bigger than the file (RIFF size consistent with the file)');

  const riffLies = wav({ samples: 100, riffSize: 0xffffffff });
  t.match(reason(parseWav(riffLies)), /^truncated: the RIFF header says 4294967303 bytes/, 'RIFF size bigger than the file');

  const strayTail = Buffer.concat([wav({ samples: 100 }), Buffer.from([1, 2, 3])]);
  strayTail.writeUInt32LE(strayTail.length - 8, 4);
  t.equal(reason(parseWav(strayTail)), `truncated: 3 stray byte(s) at offset ${strayTail.length - 3} where a chunk header should be`);

  const badList = wav({ samples: 10, before: [{ id: 'LIST', body: Buffer.alloc(4) }] });
  badList.writeUInt32LE(5000, 12 + 24 + 4); // the LIST chunk's size field
  t.match(reason(parseWav(badList)), /^truncated: chunk "LIST" at offset 36 says 5000 bytes/, 'a chunk before data claiming too much');
});

t.test('junk never throws', async (t) => {
  // Random bytes behind a valid RIFF/WAVE start, and fully random buffers.
  let seed = 12345;
  const rand = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed & 0xff; };
  let refused = 0;
  let threw = 0;
  for (let n = 0; n < 500; n++) {
    const len = 12 + (rand() * 7) % 300;
    const b = Buffer.alloc(len);
    for (let i = 0; i < len; i++) b[i] = rand();
    if (n % 2 === 0) { b.write('RIFF', 0, 'latin1'); b.writeUInt32LE(len - 8, 4); b.write('WAVE', 8, 'latin1'); }
    try {
      if (!parseWav(b).ok) refused++;
    } catch {
      threw++;
    }
  }
  t.equal(threw, 0, 'no exception');
  t.equal(refused, 500, 'random bytes are never a valid prompt');
});

t.test('size and duration limits', async (t) => {
  const big = Buffer.alloc(MAX_PROMPT_BYTES + 1);
  t.equal(reason(parseWav(big)), `file is ${MAX_PROMPT_BYTES + 1} bytes: prompts are at most ${MAX_PROMPT_BYTES} bytes`);
  // 10 minutes and 1 s of μ-law fits in 10 MiB but is too long.
  const samples = (MAX_PROMPT_DURATION_MS / 1000 + 1) * 8000;
  t.equal(reason(parseWav(wav({ format: 7, samples }))), '10 min 1 s of audio: prompts are at most 10 min 0 s');
  t.match(parseWav(wav({ format: 7, samples: (MAX_PROMPT_DURATION_MS / 1000) * 8000 })), { ok: true, info: { durationMs: MAX_PROMPT_DURATION_MS } }, 'exactly 10 minutes is fine');
});
