/** Undo steps, run last-registered first; one failing does not stop the others. */
export class Cleanup {
  private readonly steps: { what: string; undo: () => Promise<void> | void }[] = [];
  private running: Promise<void> | undefined;

  add(what: string, undo: () => Promise<void> | void): void {
    this.steps.push({ what, undo });
  }

  /** Runs every step once, even when called again (a signal during a failure's cleanup). */
  run(): Promise<void> {
    this.running ??= (async () => {
      for (let step = this.steps.pop(); step; step = this.steps.pop()) {
        try {
          await step.undo();
        } catch (error) {
          process.stderr.write(`bench: cleanup could not ${step.what}: ${(error as Error).message}\n`);
        }
      }
    })();
    return this.running;
  }
}
