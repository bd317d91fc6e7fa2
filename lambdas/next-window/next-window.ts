/**
 * NextWindow: hands the Map the next bounded window of chunk indices, so the state payload
 * stays small however many chunks a round has; and keeps the execution under Step Functions'
 * 25,000-event history limit: it reads how many events the execution has used, sizes the window
 * to what is left of the budget, and when too little is left starts a successor execution that
 * resumes the run at this point, and tells this one to end.
 */
import { DescribeExecutionCommand, ExecutionAlreadyExists, GetExecutionHistoryCommand, StartExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { SLOT_WAIT_ATTEMPTS, type RoundState, type RunConfig } from '../shared/contracts';
import { logger } from '../shared/logger';
import { executionNameOf, type RunClaims } from '../shared/run-claims';

/** Chunks handed to one Map state at most. Bounds the payload and the Map's history. */
export const WINDOW_SIZE = 100;
/**
 * History events one chunk may cost at worst: on AWS a chunk's Map iteration with its three
 * tasks (one waiting for a task token) takes about 18, a few retries 3 each (30 in all), and
 * waiting for a job slot up to SLOT_WAIT_ATTEMPTS tries of 3 events each.
 */
export const EVENTS_PER_CHUNK = 30 + SLOT_WAIT_ATTEMPTS * 3;
/** Events kept back for the states after the last window (EndRound, Finalize, a successor start). */
export const EVENTS_RESERVE = 300;
/** A window smaller than this (while more chunks remain) is not worth it: continue instead. */
export const MIN_WINDOW = 10;
/**
 * An execution with no more history than this has just started (Prepare, or a successor's
 * resume): it always takes a window, so a run makes progress whatever the budget.
 */
export const FRESH_EXECUTION_EVENTS = 100;

export interface WindowState {
  readonly run: RunConfig;
  readonly round: RoundState;
}

export interface NextWindowEvent extends WindowState {
  /** `$$.Execution.Id`: the running execution's ARN. */
  readonly executionArn: string;
}

export interface WindowResult extends WindowState {
  readonly window: { readonly items: ReadonlyArray<{ readonly chunk: number }> };
  /** True when a successor execution took over the run; this one ends. */
  readonly continued: boolean;
  readonly successor?: string;
}

/** The input a successor execution starts with: the run and round to resume at. */
export interface ResumeInput {
  readonly resume: WindowState;
}

export interface WindowDeps {
  readonly sfn: SFNClient;
  /** The history events one execution may use. */
  readonly historyEventBudget: number;
  /** The run's claim, handed over to the successor before it starts. */
  readonly claims: RunClaims;
  /** The random part of a new successor's name: 8 lowercase hex digits. @default 4 random bytes (node:crypto) */
  readonly randomSuffix?: () => string;
}

/** A successor name's random suffix: 8 lowercase hex digits (32 bits). */
const SUFFIX_PATTERN = /^[0-9a-f]{8}$/;
/** Step Functions' limit on an execution name. */
const MAX_EXECUTION_NAME = 80;

/** The number of history events the execution has so far (the id of its latest event). */
export async function historyLength(sfn: SFNClient, executionArn: string): Promise<number> {
  const res = await sfn.send(new GetExecutionHistoryCommand({ executionArn, reverseOrder: true, maxResults: 1, includeExecutionData: false }));
  return res.events?.[0]?.id ?? 0;
}

/** How many chunks the next window may hold with `used` of `budget` events spent. */
export function windowSizeFor(used: number, budget: number): number {
  return Math.max(0, Math.min(WINDOW_SIZE, Math.floor((budget - used - EVENTS_RESERVE) / EVENTS_PER_CHUNK)));
}

/** The state machine ARN of an execution ARN (`…:execution:<machine>:<name>`). */
export function stateMachineArnOf(executionArn: string): string {
  const parts = executionArn.split(':');
  if (parts.length < 8 || parts[5] !== 'execution') throw new Error(`not an execution ARN: ${executionArn}`);
  return [...parts.slice(0, 5), 'stateMachine', parts[6]].join(':');
}

/** The ARN of execution `name` of the state machine `stateMachineArn`. */
export function executionArnOf(stateMachineArn: string, name: string): string {
  const parts = stateMachineArn.split(':');
  if (parts.length !== 7 || parts[5] !== 'stateMachine') throw new Error(`not a state machine ARN: ${stateMachineArn}`);
  return [...parts.slice(0, 5), 'execution', parts[6], name].join(':');
}

/**
 * The successor's execution name: `<runId>-r<round>-c<nextChunk>-<suffix>`, the run position
 * (for people reading the execution list) and 8 random hex digits. The suffix makes the name
 * unguessable: a name derived from the run position alone could be taken ahead of the hand-over
 * by anyone allowed to StartExecution, with another input (the hand-over fails) or with the very
 * input the hand-over sends (a dead execution would be taken for the successor). A retried
 * NextWindow reuses the name its first attempt recorded in the claim, so its start is a no-op.
 * A run id has at most 40 characters, which leaves the round and chunk numbers 27 digits
 * within Step Functions' 80; a longer name is refused rather than cut.
 * @param suffix 8 lowercase hex digits, fresh per hand-over
 */
export function successorName(state: WindowState, suffix: string): string {
  if (!SUFFIX_PATTERN.test(suffix)) throw new Error(`a successor name suffix is 8 lowercase hex digits, not ${suffix}`);
  const name = `${successorPrefix(state)}-${suffix}`;
  if (name.length > MAX_EXECUTION_NAME) throw new Error(`successor name ${name} is longer than ${MAX_EXECUTION_NAME} characters`);
  return name;
}

/** The run-position part of a successor's name. */
function successorPrefix(state: WindowState): string {
  return `${state.run.runId}-r${state.round.number}-c${state.round.nextChunk}`;
}

const randomHex = (): string => randomBytes(4).toString('hex');

/**
 * The name of the successor this execution hands over to: the one the claim records when an
 * earlier attempt of this NextWindow handed over already (the claim names this execution as
 * `handedOverBy` and a successor of this run position as `owner`), else a fresh one.
 */
async function chooseSuccessorName(deps: WindowDeps, event: NextWindowEvent): Promise<string> {
  const claim = await deps.claims.get(event.run.runId);
  if (claim?.handedOverBy === event.executionArn && claim.owner !== event.executionArn) {
    const recorded = executionNameOf(claim.owner);
    const prefix = `${successorPrefix(event)}-`;
    if (
      recorded.startsWith(prefix) &&
      SUFFIX_PATTERN.test(recorded.slice(prefix.length)) &&
      claim.owner === executionArnOf(stateMachineArnOf(event.executionArn), recorded)
    ) {
      return recorded;
    }
  }
  // Anything else (no hand-over yet, or a claim this execution does not own) gets a fresh name;
  // the hand-over then refuses a claim that is not this execution's.
  return successorName(event, (deps.randomSuffix ?? randomHex)());
}

/** The next window of a round and the round advanced past it, or a hand-over to a successor. */
export async function nextWindow(deps: WindowDeps, event: NextWindowEvent): Promise<WindowResult> {
  const { run, round } = event;
  const used = await historyLength(deps.sfn, event.executionArn);
  const remaining = round.chunkCount - round.nextChunk;
  const wanted = Math.min(MIN_WINDOW, remaining);
  let size = Math.min(windowSizeFor(used, deps.historyEventBudget), remaining);
  if (size < wanted && used <= FRESH_EXECUTION_EVENTS) size = wanted;
  if (size < wanted) {
    const name = await chooseSuccessorName(deps, event);
    await startSuccessor(deps, event, name);
    logger.info('continuing the run in a successor execution', { runId: run.runId, historyEvents: used, successor: name });
    return { run, round, window: { items: [] }, continued: true, successor: name };
  }
  const end = round.nextChunk + size;
  const items = [];
  for (let chunk = round.nextChunk; chunk < end; chunk++) items.push({ chunk });
  return {
    run,
    round: { ...round, nextChunk: end, hasMoreChunks: end < round.chunkCount },
    window: { items },
    continued: false,
  };
}

/** Statuses of an existing execution of the successor's name that may be this hand-over's successor. */
const LIVE_OR_DONE = new Set(['RUNNING', 'SUCCEEDED']);

/**
 * Hands the run over to the successor `name` and starts it. The claim names the successor first,
 * so its Prepare believes its `resume`; the successor is started only then. The name is random
 * and recorded only in the claim, so an execution of that name that exists already is this
 * hand-over's own (a retried NextWindow): it is accepted only if its input is the one this
 * hand-over sends and it is running or has succeeded. An input that differs is refused
 * (`SuccessorNameTaken`) and the run stays with this execution, rather than ending
 * `ContinuedInSuccessor` with no successor to go on. A successor that has already ended otherwise
 * (`SuccessorEnded`) keeps the run: it owns it, and its own end (its FinalizeFailed, or stop-run)
 * finalizes it; this execution fails loudly instead of ending as if the run went on.
 */
async function startSuccessor(deps: WindowDeps, event: NextWindowEvent, name: string): Promise<void> {
  const { run, round } = event;
  const stateMachineArn = stateMachineArnOf(event.executionArn);
  const successorArn = executionArnOf(stateMachineArn, name);
  const input: ResumeInput = { resume: { run, round } };
  await deps.claims.handOver(run.runId, event.executionArn, successorArn, round);
  try {
    await deps.sfn.send(new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) }));
  } catch (err) {
    if (!(err instanceof ExecutionAlreadyExists) && (err as Error).name !== 'ExecutionAlreadyExists') {
      await deps.claims.takeBack(run.runId, event.executionArn, successorArn);
      throw err;
    }
    const existing = await deps.sfn.send(new DescribeExecutionCommand({ executionArn: successorArn }));
    let existingInput: unknown;
    try {
      existingInput = JSON.parse(existing.input ?? 'null');
    } catch {
      existingInput = undefined;
    }
    if (!isDeepStrictEqual(existingInput, input)) {
      await deps.claims.takeBack(run.runId, event.executionArn, successorArn);
      throw Object.assign(
        new Error(`cannot continue run ${run.runId}: an execution named ${name} exists already and was not started by this run's hand-over`),
        { name: 'SuccessorNameTaken' },
      );
    }
    if (!LIVE_OR_DONE.has(existing.status ?? '')) {
      throw Object.assign(
        new Error(
          `cannot continue run ${run.runId}: its successor execution ${name} has already ended ${existing.status ?? 'in an unknown status'}; the run ends with it (see that execution)`,
        ),
        { name: 'SuccessorEnded' },
      );
    }
  }
}
