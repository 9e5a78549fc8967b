/**
 * The V8 flags Dialplane runs with, wherever it is started: `npm start`,
 * the Dockerfile's ENTRYPOINT, the e2e harness (test/e2e/harness.ts) and the
 * benchmark (test/bench/proxies-under-test.ts). The last two import this
 * list; test/unit/config/node-flags.test.ts checks that package.json and
 * the Dockerfile spell it, so tests always run the server as it ships.
 *
 * --no-allocation-site-pretenuring: V8 watches the object and array
 * literals a function allocates and, when most of a site's objects are
 * found alive by a scavenge while the young generation is at its maximum
 * size, allocates that site's objects in the old generation from then on,
 * for the life of the process (the decision is never revisited). A burst
 * of calls (in the in-process bench, its warm-up of 100 INVITEs at once;
 * in production, a hotline spike) leaves the parser's header rows and
 * parameter lists, the proxy's response contexts and the router's plans
 * alive at one scavenge, and from then on every call put them straight
 * into the old generation, where only full collections free them, and
 * kept what they point to alive through the scavenges as well. Measured
 * in the in-process bench (node dist/test/bench/inproc-bench.js, 2000
 * calls/s, 2026-11-24): with V8's default the same build promoted either
 * 11.7 or 20-25 KB per call to the old generation, depending on the run,
 * at 142-146 or 175-189 µs/call; with the flag 14.0-14.1 KB and 135-151
 * µs/call in every run. A predictable cost is what a PBX needs; under
 * SIPp at 1000-2000 calls/s the two were within the run-to-run noise
 * (12.4 and 13.5 KB promoted per call).
 *
 * --heap-growing-percent=30: after a full collection V8 lets the old
 * generation grow to a multiple of what survived before it collects
 * again. The multiple it picks depends on how fast it collects: here up
 * to about 2.5 times. The process's memory was a sawtooth. A 5-minute
 * soak at 1000 calls/s (npm run bench -- --soak 300, late on 2026-11-24)
 * stayed between a flat floor of 368-375 MB and 616 MB: all samples 416
 * MB ±36 %, against the "±10 %" a PBX operator is promised. With growth
 * fixed at 30 %, 180 s at 1000 calls/s stayed between 272 and 293 MB
 * (±3.7 %); with 15 %, 262-274 MB (±2.3 %). 0 failed calls and 0
 * retransmissions in all three. The price is more full collections:
 * 12-13 instead of 3 in the in-process bench (2000 calls/s, 10 s),
 * whose CPU per call, normalised by its simulated endpoints' time, rose
 * 3-5 % with 30 % and 9 % with 15 %. Under SIPp the three soaks gave 603,
 * 694 and 630 µs/call, which is within this machine's run-to-run noise.
 *
 * Not adopted: --single-threaded-gc (used until 2026-11-24): short
 * benchmark steps showed a little less CPU per call without GC helper
 * threads; a 5-minute soak at 1000 calls/s then
 * showed its cost: every full collection of a heap of 1-1.8 GB (a call is
 * kept 32 s by RFC 6026's wait states) paused the only thread long enough
 * for SIPp to retransmit, 4726 calls of 300 000 failed and 50 685
 * messages were retransmitted, at 763 µs/call. With concurrent marking
 * (the default), 1000 calls/s over 150 s: 0 failed, 533 retransmissions,
 * 652 µs/call (npm run bench -- --soak, same afternoon); over 300 s, 137
 * of 300 000 failed, 3382 retransmissions, 684 µs/call; and once the wait
 * states kept less (WaitQueue, detached branch handlers, evening of
 * 2026-11-24), 0 of 300 000 failed and 0 retransmissions, 541 µs/call.
 * Re-measured that night under SIPp (20 s steps, two rounds each, µs/call
 * at 1000 and 2000 calls/s): V8's default 291/241 and 262/248,
 * --no-parallel-scavenge 289/258 and 293/246, --single-threaded-gc 295/228
 * and 311/240: no flag stands out of the noise.
 * A larger young generation (--max-semi-space-size=32 or 64) cut the
 * scavenger's time in the in-process bench (1346 -> 880 / 763 ms for
 * 24 000 calls) but not under SIPp (1085 / 1023 / 728 ms, the same bytes
 * promoted, CPU per call within the run-to-run noise): not adopted.
 * (Keeping concurrent marking with the parallel phases switched off,
 * --no-parallel-marking and friends, crashed V8 in MarkLiveObjects: not a
 * supported combination.)
 */
export const NODE_FLAGS: readonly string[] = ['--no-allocation-site-pretenuring', '--heap-growing-percent=30'];
