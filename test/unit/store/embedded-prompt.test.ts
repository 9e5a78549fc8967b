import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { EmbeddedPromptStore } from '../../../src/store/embedded/prompt-store.js';
import { PROMPT_NOW, TEST_LIMITS, audioBytes, described, promptContract } from './prompt-contract.js';

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dp-prompts-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('contract, in memory', async (t) => {
  promptContract(t, async () => {
    const store = await EmbeddedPromptStore.open({ now: () => PROMPT_NOW, limits: TEST_LIMITS });
    return { store, cleanup: () => store.close() };
  });
});

t.test('contract, in a directory', async (t) => {
  promptContract(t, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dp-prompts-'));
    const store = await EmbeddedPromptStore.open({ dir, now: () => PROMPT_NOW, limits: TEST_LIMITS });
    return { store, cleanup: async () => { await store.close(); await rm(dir, { recursive: true, force: true }); } };
  });
});

t.test('files: <tenant>/<id>.wav as uploaded and <id>.json, kept across a reopen', async (t) => {
  const dir = await tempDir(t);
  const store = await EmbeddedPromptStore.open({ dir, now: () => PROMPT_NOW });
  const put = await store.put('acme', 'welcome', { audio: audioBytes(1), meta: described({ name: '欢迎' }) });
  await store.put('租户', 'p', { audio: audioBytes(2), meta: described() });
  t.ok((await readFile(join(dir, 'acme', 'welcome.wav'))).equals(audioBytes(1)), 'the audio file is the upload');
  const meta = JSON.parse(await readFile(join(dir, 'acme', 'welcome.json'), 'utf8')) as Record<string, unknown>;
  t.match(meta, { format: 'dialplane-prompt', id: 'welcome', name: '欢迎', version: put.meta.version, bytes: 2048 });
  t.strictSame((await readdir(dir)).sort(), ['acme', `~${Buffer.from('租户').toString('hex')}`], 'a tenant id outside the Id pattern is hex-encoded');
  t.equal((await stat(join(dir, 'acme', 'welcome.wav'))).mode & 0o777, 0o600, 'files are private');
  await store.close();

  const reopened = await EmbeddedPromptStore.open({ dir });
  t.strictSame(await reopened.getMeta('acme', 'welcome'), put.meta);
  t.ok((await reopened.getAudio('租户', 'p'))?.audio.equals(audioBytes(2)));
  t.equal(await reopened.delete('acme', 'welcome'), true);
  t.strictSame(await readdir(join(dir, 'acme')), [], 'both files removed');
  await reopened.close();
});

t.test('crash leftovers: temp files removed at open; audio not matching its description is not served', async (t) => {
  const dir = await tempDir(t);
  const store = await EmbeddedPromptStore.open({ dir });
  await store.put('acme', 'a', { audio: audioBytes(1), meta: described() });
  await store.put('acme', 'b', { audio: audioBytes(2), meta: described() });
  await store.put('acme', 'c', { audio: audioBytes(3), meta: described() });
  await store.close();
  // A write interrupted before its rename, one between the audio's rename and the description's
  // (same size, other bytes), and an audio file cut short.
  await writeFile(join(dir, 'acme', 'a.wav.tmp-123-0123456789ab'), 'partial');
  await writeFile(join(dir, 'acme', 'b.wav'), audioBytes(9));
  await writeFile(join(dir, 'acme', 'c.wav'), audioBytes(3).subarray(0, 100));
  await writeFile(join(dir, 'acme', 'x.tmp-1.json'), 'not a description'); // an id that looks like a temp name, and junk
  const reopened = await EmbeddedPromptStore.open({ dir });
  t.teardown(() => reopened.close());
  t.notOk((await readdir(join(dir, 'acme'))).includes('a.wav.tmp-123-0123456789ab'), 'temp file removed');
  t.ok((await reopened.getAudio('acme', 'a'))?.audio.equals(audioBytes(1)), 'a intact');
  t.ok(await reopened.getMeta('acme', 'b'), 'b\'s description is there');
  t.equal(await reopened.getAudio('acme', 'b'), undefined, 'but its audio is not the one it describes: not served');
  t.equal(await reopened.getMeta('acme', 'c'), undefined, 'c: size differs from the description, skipped at open');
  t.strictSame((await reopened.list('acme', { limit: 10 })).items.map((m) => m.id), ['a', 'b']);
  await reopened.put('acme', 'b', { audio: audioBytes(4), meta: described() });
  t.ok((await reopened.getAudio('acme', 'b'))?.audio.equals(audioBytes(4)), 're-uploading repairs it');
});

t.test('a closed store refuses with DP_STORE_CLOSED', async (t) => {
  const store = await EmbeddedPromptStore.open();
  await store.close();
  await t.rejects(store.put('acme', 'p', { audio: audioBytes(1), meta: described() }), { code: 'DP_STORE_CLOSED' });
  await t.rejects(store.list('acme', { limit: 1 }), { code: 'DP_STORE_CLOSED' });
});

t.test('an unreadable directory stops start-up', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'file'), 'x');
  await t.rejects(EmbeddedPromptStore.open({ dir: join(dir, 'file') }), { code: 'DP_STORE_BAD_FILE' });
});
