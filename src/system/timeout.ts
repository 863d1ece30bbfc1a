/**
 * A promise raced against a timer: its value, or the error `onTimeout` makes once timeoutMs have
 * passed (onTimeout runs first, so it may also unblock what the promise waits on). The timer is
 * cleared either way.
 */
export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(onTimeout()), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
