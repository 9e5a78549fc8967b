/**
 * The V8 flags Dialplane runs with, wherever it is started: `npm start`,
 * the Dockerfile's ENTRYPOINT, the e2e harness (test/e2e/harness.ts) and the
 * benchmark (test/bench/proxies-under-test.ts). The last two import this
 * list; test/unit/config/node-flags.test.ts checks that package.json and
 * the Dockerfile spell it, so tests always run the server as it ships.
 *
 * None at present: V8's defaults. --single-threaded-gc was used until
 * 2026-11-24 because short benchmark steps showed a little less CPU per
 * call without GC helper threads; a 5-minute soak at 1000 calls/s then
 * showed its cost: every full collection of a heap of 1-1.8 GB (a call is
 * kept 32 s by RFC 6026's wait states) paused the only thread long enough
 * for SIPp to retransmit, 4726 calls of 300 000 failed and 50 685
 * messages were retransmitted, at 763 µs/call. With concurrent marking
 * (the default), 1000 calls/s over 150 s: 0 failed, 533 retransmissions,
 * 652 µs/call (npm run bench -- --soak, same afternoon); over 300 s, 137
 * of 300 000 failed, 3382 retransmissions, 684 µs/call; and once the wait
 * states kept less (WaitQueue, detached branch handlers, evening of
 * 2026-11-24), 0 of 300 000 failed and 0 retransmissions, 541 µs/call.
 * A larger young generation (--max-semi-space-size=32 or 64) cut the
 * scavenger's time in the in-process bench (1346 -> 880 / 763 ms for
 * 24 000 calls) but not under SIPp (1085 / 1023 / 728 ms, the same bytes
 * promoted, CPU per call within the run-to-run noise): not adopted. Short benchmark
 * steps still favour --single-threaded-gc (552 against 858 µs/call at
 * 1000/s, and 1500/s held only with it): the helper threads compete with
 * SIPp for the two cores. Sustained load is what a PBX must hold; what
 * both need is a smaller heap per call. (Keeping concurrent marking with
 * the parallel phases switched off, --no-parallel-marking and friends,
 * crashed V8 in MarkLiveObjects: not a supported combination.)
 */
export const NODE_FLAGS: readonly string[] = [];
