/** A background job that runs now and then every interval, one pass at a time. */
export interface PeriodicJob {
  /** Stops the timer and waits for a pass in progress. */
  stop(): Promise<void>;
}

/**
 * Runs `pass` at once and then every `intervalMs`, never two passes at a time; the timer does
 * not keep the process alive. `pass` handles its own errors (a failure waits for the next interval).
 */
export function startPeriodic(pass: () => Promise<void>, intervalMs: number): PeriodicJob {
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const tick = () => {
    if (stopped) return;
    running = running.then(pass);
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  tick();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
