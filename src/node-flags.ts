/**
 * The V8 flags Dialplane runs with, wherever it is started: `npm start`,
 * the Dockerfile's ENTRYPOINT, the e2e harness (test/e2e/harness.ts) and the
 * benchmark (test/bench/proxies-under-test.ts). The last two import this
 * list; test/unit/config/node-flags.test.ts checks that package.json and
 * the Dockerfile spell it, so tests always run the server as it ships.
 *
 * --single-threaded-gc: a call retains ~20 KB for 32 s (transactions in
 * their wait states), so the young generation is scavenged often and with
 * many survivors. Parallel scavenging and concurrent marking split that work
 * over helper threads at a higher total CPU cost; on a 2-core box shared
 * with the kernel's network work (and SIPp in the benchmark) CPU per call is
 * what counts, not GC pause length. In-process bench, 1000 calls/s: median
 * 416 -> 361 us/call (3 runs each); the SIPp benchmark in the issue showed
 * about 6 % less CPU.
 */
export const NODE_FLAGS: readonly string[] = ['--single-threaded-gc'];
