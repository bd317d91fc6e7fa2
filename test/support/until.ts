/** Waits (polling every `pauseMs`) until `check` returns a value; fails after `tries` looks. */
export async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>, tries = 600, pauseMs = 100): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, pauseMs));
  }
  throw new Error(`gave up waiting for ${what}`);
}
