/**
 * Runs an embedded store's file tasks (writes, flushes, compactions) one
 * after another, in the order they were queued. A task's own promise
 * carries its result or error; a failed task never stops the next one.
 */
export class SerialQueue {
  /** Tail of the queue; never rejects. */
  #tail: Promise<void> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task);
    this.#tail = result.then(() => undefined, () => undefined);
    return result;
  }

  /** Settles once every task queued so far has settled. */
  idle(): Promise<void> {
    return this.#tail;
  }
}
