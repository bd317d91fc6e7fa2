/**
 * How the twin plays the template's Task states: each Task state of the workflow bound to it as its resource
 * (`lambda:invoke`, `lambda:invoke.waitForTaskToken`, or a bare function ARN) would be on AWS.
 */
import { StepFunctionsError } from '../services/step-functions-wire';
import type { SandboxFunction } from './lambda-runtime';
import { taskInput } from './payload-limits';

/** A template function as the twin runs it (in a sandbox of its own, lambda-runtime.ts). */
export type LocalFunction = SandboxFunction;

/** What a Task binding needs from the twin. */
export interface TaskRuntime {
  /** Invokes the function at `functionArn` for the Task state `state`; resolves with its JSON result. */
  readonly invoke: (state: string, functionArn: string, payload: unknown) => Promise<unknown>;
  /** Waits for a task token's completion (`SendTaskSuccess` / `SendTaskFailure`). */
  readonly waitForToken: (token: string) => Promise<unknown>;
  /** Closes a token whose task failed: later completions answer `TaskTimedOut`, as on AWS. */
  readonly closeToken?: (token: string) => void;
}

/** Task state name -> local handler, playing each Task's resource as AWS would. */
export function taskHandlers(definition: Record<string, unknown>, runtime: TaskRuntime): Record<string, (input: unknown) => Promise<unknown>> {
  const out: Record<string, (input: unknown) => Promise<unknown>> = {};
  for (const [name, state] of taskStates(definition)) {
    const resource = String(state.Resource ?? '');
    out[name] = async (input: unknown) => {
      taskInput(name, input);
      const params = (input ?? {}) as { FunctionName?: string; Payload?: unknown };
      if (resource === 'arn:aws:states:::lambda:invoke') {
        const payload = await runtime.invoke(name, String(params.FunctionName), params.Payload);
        return { ExecutedVersion: '$LATEST', Payload: payload, StatusCode: 200 };
      }
      if (resource === 'arn:aws:states:::lambda:invoke.waitForTaskToken') {
        const token = (params.Payload as { taskToken?: string } | undefined)?.taskToken;
        if (!token) throw new StepFunctionsError('States.Runtime', `${name}: the payload carries no taskToken`);
        try {
          await runtime.invoke(name, String(params.FunctionName), params.Payload);
        } catch (err) {
          // The attempt failed, and with it its token: a retry gets a new one.
          runtime.closeToken?.(token);
          throw err;
        }
        return runtime.waitForToken(token);
      }
      return runtime.invoke(name, resource, input);
    };
  }
  return out;
}

/** Every Task state of a definition, Map and Parallel branches included. */
export function taskStates(definition: Record<string, unknown>): Array<[string, Record<string, unknown>]> {
  const out: Array<[string, Record<string, unknown>]> = [];
  const walk = (states: Record<string, Record<string, unknown>> | undefined) => {
    for (const [name, state] of Object.entries(states ?? {})) {
      if (state.Type === 'Task') out.push([name, state]);
      const processor = (state.ItemProcessor ?? state.Iterator) as { States?: Record<string, Record<string, unknown>> } | undefined;
      walk(processor?.States);
      for (const branch of (state.Branches as Array<{ States?: Record<string, Record<string, unknown>> }> | undefined) ?? []) walk(branch.States);
    }
  };
  walk(definition.States as Record<string, Record<string, unknown>>);
  return out;
}
