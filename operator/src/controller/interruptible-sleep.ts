/** A sleep that wake() cuts short, so a stopping loop does not wait out its backoff. */
export class InterruptibleSleep {
  #wake?: () => void;

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  wake(): void {
    this.#wake?.();
  }
}
