/**
 * How `local up` waits for its stop signal (stopSignals in cli/local-up.ts): the first SIGINT or
 * SIGTERM stops it, and a repeat while it stops is a no-op, since a signal sent to the command's
 * whole process group reaches the twin twice on Linux (directly and through the command's
 * parent, bin/relaunch.js). Driven through an EventEmitter standing in for the process.
 */
import { EventEmitter } from 'node:events';
import { stopSignals } from '../../cli/local-up';

describe('stopSignals', () => {
  test('the first SIGTERM stops; repeats of either signal are no-ops that keep a handler until release', async () => {
    const signals = new EventEmitter();
    const repeats: string[] = [];
    const stop = stopSignals(undefined, () => repeats.push('again'), signals);
    let stopped = false;
    void stop.stopped.then(() => (stopped = true));
    signals.emit('SIGTERM');
    await stop.stopped;
    expect(stopped).toBe(true);
    // Still handled: a real second signal would otherwise end the process half-stopped.
    expect(signals.listenerCount('SIGTERM')).toBe(1);
    expect(signals.listenerCount('SIGINT')).toBe(1);
    signals.emit('SIGTERM');
    signals.emit('SIGINT');
    expect(repeats).toEqual(['again', 'again']);
    stop.release();
    expect(signals.listenerCount('SIGTERM')).toBe(0);
    expect(signals.listenerCount('SIGINT')).toBe(0);
  });

  test('SIGINT stops too', async () => {
    const signals = new EventEmitter();
    const stop = stopSignals(undefined, undefined, signals);
    signals.emit('SIGINT');
    await expect(stop.stopped).resolves.toBeUndefined();
    stop.release();
  });

  test('with an AbortSignal, no process signal is handled', async () => {
    const signals = new EventEmitter();
    const abort = new AbortController();
    const stop = stopSignals(abort.signal, undefined, signals);
    expect(signals.listenerCount('SIGTERM')).toBe(0);
    abort.abort();
    await expect(stop.stopped).resolves.toBeUndefined();
  });
});
