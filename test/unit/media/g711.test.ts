import t from 'tap';
import { alawToLinear, linearToAlaw, linearToMulaw, mulawToLinear, pcm16At8k, toG711 } from '../../../src/media/g711.js';
import { parseWav, type WavInfo } from '../../../src/media/wav.js';
import { tonePcm16, wav } from '../../helpers/wav-builder.js';

function info(file: Buffer): WavInfo {
  const v = parseWav(file);
  if (!v.ok) throw new Error(v.reason);
  return v.info;
}

// Expected codes: ITU-T G.191 STL g711.c (the Recommendation's reference coder) on 16-bit input.
t.test('μ-law: known code words', async (t) => {
  const cases: Array<[number, number]> = [
    [0, 0xff], [1, 0xff], [-1, 0x7f], [-4, 0x7f], [-5, 0x7e], [32767, 0x80], [-32768, 0x00], [32124, 0x80],
    [100, 0xf2], [-100, 0x73], [1000, 0xce], [-1000, 0x4e], [8000, 0xa0], [-8000, 0x20],
  ];
  for (const [linear, code] of cases) t.equal(linearToMulaw(linear), code, `${linear} → 0x${code.toString(16)}`);
  t.equal(mulawToLinear(0xff), 0, '0xff decodes to 0');
  t.equal(mulawToLinear(0x7f), 0, '0x7f (negative zero) decodes to 0');
  t.equal(mulawToLinear(0x80), 32124, 'largest positive');
  t.equal(mulawToLinear(0x00), -32124, 'largest negative');
  t.equal(mulawToLinear(0xce), 988, '0xce: middle of 956-1020, the interval 1000 falls in');
});

t.test('A-law: known code words', async (t) => {
  const cases: Array<[number, number]> = [
    [0, 0xd5], [-1, 0x55], [8, 0xd5], [16, 0xd4], [32767, 0xaa], [-32768, 0x2a], [100, 0xd3], [-100, 0x53],
    [1000, 0xfa], [-1000, 0x7a], [8000, 0x8a], [-8000, 0x0a],
  ];
  for (const [linear, code] of cases) t.equal(linearToAlaw(linear), code, `${linear} → 0x${code.toString(16)}`);
  t.equal(alawToLinear(0xd5), 8, '0xd5 decodes to +8');
  t.equal(alawToLinear(0x55), -8, '0x55 decodes to -8');
  t.equal(alawToLinear(0xaa), 32256, 'largest positive');
  t.equal(alawToLinear(0x2a), -32256, 'largest negative');
});

t.test('every code word survives decode → encode; quantization error stays within its segment step', async (t) => {
  for (let code = 0; code < 256; code++) {
    if (code !== 0x7f) t.equal(linearToMulaw(mulawToLinear(code)), code, `μ-law 0x${code.toString(16)}`);
    t.equal(linearToAlaw(alawToLinear(code)), code, `A-law 0x${code.toString(16)}`);
  }
  let worstU = 0;
  let worstA = 0;
  for (let x = -32000; x <= 32000; x += 7) {
    const step = Math.abs(x) < 64 ? 4 : Math.abs(x) / 16;
    worstU = Math.max(worstU, Math.abs(mulawToLinear(linearToMulaw(x)) - x) / Math.max(step, 4));
    worstA = Math.max(worstA, Math.abs(alawToLinear(linearToAlaw(x)) - x) / Math.max(step, 16));
  }
  t.ok(worstU <= 1.01, `μ-law error within one step (worst ${worstU.toFixed(3)} steps)`);
  t.ok(worstA <= 1.01, `A-law error within one step (worst ${worstA.toFixed(3)} steps)`);
});

t.test('toG711: copies a prompt already in the law, converts the others', async (t) => {
  const ulawFile = wav({ format: 7, data: Buffer.from([0xff, 0x80, 0x00, 0xce]) });
  t.strictSame(toG711(ulawFile, info(ulawFile), 'pcmu'), Buffer.from([0xff, 0x80, 0x00, 0xce]), 'μ-law as is');
  t.strictSame(toG711(ulawFile, info(ulawFile), 'pcma'), Buffer.from([0xd5, 0xaa, 0x2a, 0xfb]), 'μ-law → A-law through the linear value (0xce is 988, A-law 0xfb)');
  const pcm = Buffer.alloc(8);
  [0, 32767, -32768, 1000].forEach((s, i) => pcm.writeInt16LE(s, i * 2));
  const pcmFile = wav({ data: pcm });
  t.strictSame(toG711(pcmFile, info(pcmFile), 'pcmu'), Buffer.from([0xff, 0x80, 0x00, 0xce]), 'PCM → μ-law');
  t.strictSame(toG711(pcmFile, info(pcmFile), 'pcma'), Buffer.from([0xd5, 0xaa, 0x2a, 0xfa]), 'PCM → A-law');
});

t.test('16 kHz PCM is low-passed and decimated to 8 kHz', async (t) => {
  const rms = (s: Int16Array, from: number): number => {
    let sum = 0;
    for (let i = from; i < s.length - from; i++) sum += (s[i] as number) ** 2;
    return Math.sqrt(sum / (s.length - 2 * from));
  };
  const n = 16000;
  const speech = wav({ sampleRate: 16000, data: tonePcm16(n, 16000, 10000, 1000) });
  const out = pcm16At8k(speech, info(speech));
  t.equal(out.length, 8000, 'half the samples');
  t.ok(Math.abs(rms(out, 50) - 10000 / Math.SQRT2) < 150, `1 kHz passes at full level (rms ${rms(out, 50).toFixed(0)})`);
  const hiss = wav({ sampleRate: 16000, data: tonePcm16(n, 16000, 10000, 6500) });
  const folded = pcm16At8k(hiss, info(hiss));
  t.ok(rms(folded, 50) < 10000 / Math.SQRT2 / 30, `6.5 kHz (would alias to 1.5 kHz) is attenuated by over 30 dB (rms ${rms(folded, 50).toFixed(0)})`);
  t.equal(toG711(speech, info(speech), 'pcmu').length, 8000, 'one byte per 8 kHz sample');
});
