/**
 * The execution history AWS would write, counted from the local interpreter's coarser event log.
 *
 * Step Functions (Standard) writes an event for each step of a state's life, and fails an
 * execution whose history reaches 25,000 events. The interpreter logs about two events a state,
 * so counting its log would let a run go about twice as far here as on AWS before it hands over
 * or fails. Each interpreter event stands for the AWS events it covers (the event types of
 * https://docs.aws.amazon.com/step-functions/latest/apireference/API_HistoryEvent.html):
 *
 * - a Task entered: `TaskStateEntered`, `TaskScheduled`, `TaskStarted`, and `TaskSubmitted` for a
 *   `.waitForTaskToken` task; its retry: `TaskScheduled`, `TaskStarted` (and `TaskSubmitted`);
 *   its end: `TaskSucceeded`, `TaskStateExited`; a failed attempt: `TaskFailed`;
 * - a Map or Parallel entered: `…StateEntered`, `…StateStarted`; its end `…StateSucceeded`,
 *   `…StateExited`; each Map iteration `MapIterationStarted` and `…Succeeded`/`…Failed`;
 * - any other state: entered and exited, one each; the execution's start and end, one each.
 *
 * A caught failure counts one more (the state's exit). The weights are read from the event
 * types AWS documents, not measured against a real history: close, not exact.
 */
import { forEachState } from './asl-states';
import type { ExecutionEvent } from './step-functions';

/** Most events an execution's history may hold (Step Functions quotas, Standard workflows). */
export const MAX_HISTORY_EVENTS = 25_000;

type Json = Record<string, unknown>;

/** A function that gives, for each interpreter event of `definition`'s executions, the AWS history events it stands for. */
export function historyWeigher(definition: object): (event: ExecutionEvent) => number {
  const states = new Map<string, Json>();
  forEachState(definition as Json, (state, name) => void states.set(name, state));
  const kind = (event: ExecutionEvent): 'task' | 'token-task' | 'container' | 'other' => {
    const name = (event.state as { name?: unknown } | undefined)?.name;
    const state = typeof name === 'string' ? states.get(name) : undefined;
    if (state?.Type === 'Task') return typeof state.Resource === 'string' && state.Resource.endsWith('.waitForTaskToken') ? 'token-task' : 'task';
    if (state?.Type === 'Map' || state?.Type === 'Parallel') return 'container';
    return 'other';
  };
  return (event) => {
    switch (event.type) {
      case 'StateEntered': {
        const k = kind(event);
        return k === 'token-task' ? 4 : k === 'task' ? 3 : k === 'container' ? 2 : 1;
      }
      case 'StateExited':
        return kind(event) === 'other' ? 1 : 2;
      case 'StateRetried':
        return kind(event) === 'token-task' ? 3 : 2;
      case 'StateFailed':
      case 'StateCaught':
      case 'MapIterationStarted':
      case 'MapIterationSucceeded':
      case 'MapIterationFailed':
      case 'ExecutionStarted':
      case 'ExecutionSucceeded':
      case 'ExecutionFailed':
      case 'ExecutionAborted':
      case 'ExecutionTimeout':
        return 1;
      default:
        // ParallelBranch… events have no AWS counterpart.
        return 0;
    }
  };
}

/** An execution's history so far, as AWS counts it, and whether it has reached its limit. */
export class HistoryCounter {
  /** AWS history events so far. */
  events = 0;
  /** How the execution ends once its history is full (Step Functions' own failure), else undefined. */
  failure?: { status: 'FAILED'; error: string; cause: string };
  private readonly weigh: (event: ExecutionEvent) => number;

  constructor(
    definition: object,
    private readonly max?: number,
  ) {
    this.weigh = historyWeigher(definition);
  }

  /** Counts an interpreter event; true the first time the history is full (the caller stops the execution). */
  add(event: ExecutionEvent): boolean {
    this.events += this.weigh(event);
    // AWS's last event is the failure itself: event number `max`.
    if (this.max === undefined || this.failure || this.events < this.max - 1) return false;
    this.failure = { status: 'FAILED', error: 'States.Runtime', cause: `The execution reached the maximum number of history events (${this.max}).` };
    return true;
  }
}
