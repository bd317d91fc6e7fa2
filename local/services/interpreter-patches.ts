/**
 * What the twin adds to aws-local-stepfunctions 3.0.0 from outside it.
 *
 * `Promise.withResolvers`: the library declares Node >= 22 and calls it in every Task; on Node
 * 20 it must exist before the library is loaded.
 *
 * A synchronous look at every state's output as the interpreter finishes the state, before
 * the next one begins: Map iterations and Parallel branches included, since each runs as a
 * nested state machine that inherits the run's options.
 *
 * The interpreter's event log is an async iterator, read a few microtasks after a state ends,
 * when the next state (a Task that calls a function) may already have started; a check there
 * would let a state run that AWS never reaches. So the check wraps the one call the
 * interpreter makes at each state's end, `eventLogger.dispatchStateExitedEvent(name, type,
 * input, output)`, from inside its execution loop: whatever the check throws fails the state,
 * and with it the execution (or, in an iteration, the Map state, which rethrows the
 * iteration's error as its own and honours the error's `isRetryable`/`isCatchable` flags).
 * The run's check travels in the run options under a symbol: the interpreter copies its run
 * options into each nested run.
 */

/** The run option that carries the check (a symbol, so it never meets the library's own). */
export const STATE_EXITED = Symbol('bedrock-batch.onStateExited');

/** Called with a state's name and output as it ends; throw to fail that state. */
export type StateExitCheck = (state: string, output: unknown) => void;

interface EventLogger {
  dispatchStateExitedEvent(name: string, type: string, input: unknown, output: unknown): void;
}
interface ExecuteOptions {
  readonly runOptions?: { readonly [STATE_EXITED]?: StateExitCheck };
  readonly eventLogger: EventLogger;
}
type Execute = (this: unknown, input: unknown, options: ExecuteOptions, cleanup: unknown) => Promise<unknown>;

const installed = new WeakSet<object>();

/**
 * Wraps the interpreter's `StateMachine.prototype.execute` once, so that a run whose options
 * carry {@link STATE_EXITED} has each state's output checked as the state ends.
 * @throws Error when the library no longer has the method this relies on (a version change)
 */
export function installStateExitHook(stateMachineClass: { prototype: object }): void {
  const prototype = stateMachineClass.prototype as { execute?: Execute };
  if (installed.has(prototype)) return;
  const execute = prototype.execute;
  if (typeof execute !== 'function') {
    throw new Error('aws-local-stepfunctions: StateMachine.prototype.execute is gone; the state output check needs it');
  }
  prototype.execute = function (this: unknown, input, options, cleanup) {
    const check = options?.runOptions?.[STATE_EXITED];
    const logger = options?.eventLogger;
    if (check) {
      // A version of the library without this call would skip every check without a word: refuse to run.
      if (typeof logger?.dispatchStateExitedEvent !== 'function') {
        throw new Error('aws-local-stepfunctions: execute() no longer gets an eventLogger with dispatchStateExitedEvent; the state output check needs it');
      }
      const dispatch = logger.dispatchStateExitedEvent.bind(logger);
      logger.dispatchStateExitedEvent = (name, type, stateInput, output) => {
        check(name, output);
        dispatch(name, type, stateInput, output);
      };
    }
    return execute.call(this, input, options, cleanup);
  };
  installed.add(prototype);
}

/** Defines `Promise.withResolvers` where the runtime lacks it (Node 20). */
export function installPromiseWithResolvers(): void {
  const P = Promise as unknown as { withResolvers?: unknown };
  if (typeof P.withResolvers === 'function') return;
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T>() {
      let resolve!: (value: T | PromiseLike<T>) => void;
      let reject!: (reason?: unknown) => void;
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}
