import { setTimeout as sleep } from "node:timers/promises";

/** Time as a dependency, so renewal schedules are testable without waiting. */
export interface Clock {
  now(): Date;
  /** Resolves after `ms`, or rejects with an AbortError when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => new Date(),
  sleep: (ms, signal) => sleep(ms, undefined, { signal }),
};
