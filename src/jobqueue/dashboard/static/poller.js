// Tasks run on their own intervals, each one at a time: the next run is timed from the end of
// the last, so a slow server is never asked twice at once for the same thing.

/** A set of named periodic tasks that start, stop and run now together. */
export class Poller {
  /** `onError(error)` gets whatever a task throws; the task keeps its schedule. */
  constructor(onError) {
    this.onError = onError;
    this.tasks = new Map();
    this.active = false;
  }

  /** Run `run` every `interval()` ms (a function, so a task can slow down or speed up). */
  add(name, interval, run) {
    this.tasks.set(name, { interval, run, timer: null, running: false, again: false });
  }

  /** Run every task now, then on its interval. */
  start() {
    this.active = true;
    for (const task of this.tasks.values()) this.runTask(task);
  }

  /** No further runs until `start` (a run in flight finishes, unscheduled). */
  stop() {
    this.active = false;
    for (const task of this.tasks.values()) {
      clearTimeout(task.timer);
      task.timer = null;
      task.again = false;
    }
  }

  /** Run the named tasks (all when none named) now, when polling is on. */
  runNow(...names) {
    if (!this.active) return;
    const chosen = names.length ? names.map((name) => this.tasks.get(name)) : this.tasks.values();
    for (const task of chosen) this.runTask(task);
  }

  async runTask(task) {
    clearTimeout(task.timer);
    task.timer = null;
    if (task.running) {
      task.again = true; // ran once more as soon as the run in flight ends
      return;
    }
    task.running = true;
    try {
      await task.run();
    } catch (error) {
      this.onError(error);
    } finally {
      task.running = false;
    }
    if (!this.active) return;
    if (task.again) {
      task.again = false;
      this.runTask(task);
      return;
    }
    task.timer = setTimeout(() => this.runTask(task), task.interval());
  }
}
