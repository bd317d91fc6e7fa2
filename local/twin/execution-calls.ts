/**
 * The Step Functions API calls about executions (`StartExecution`, `DescribeExecution`,
 * `GetExecutionHistory`, `StopExecution`) as the twin answers them to the handlers that make them
 * through the SDK, and to the operator commands run against `bedrock-batch local up`.
 */
import { StepFunctionsError, type StartExecutionRequest, type StepFunctionsApiOptions } from '../services/step-functions-api';
import type { TwinExecution } from '../twin';

/** What the calls need of the running twin. */
export interface ExecutionHost {
  readonly executions: ReadonlyMap<string, TwinExecution>;
  readonly stateMachineArn: string;
  startExecution(req: Omit<StartExecutionRequest, 'stateMachineArn'>): { executionArn: string; startDate: Date };
  stopExecution(name: string): void;
}

/** The Step Functions API's execution calls, played by the twin once it runs (`twin()`). */
export function executionCalls(twin: () => ExecutionHost | undefined): StepFunctionsApiOptions {
  const executionByArn = (arn: string) => {
    const execution = [...(twin()?.executions.values() ?? [])].find((e) => e.arn === arn);
    if (!execution) throw new StepFunctionsError('ExecutionDoesNotExist', `Execution Does Not Exist: '${arn}'`);
    return execution;
  };
  return {
    onStartExecution: async (req) => {
      const running = twin();
      if (!running) throw new StepFunctionsError('StateMachineDoesNotExist', 'the twin is starting');
      return running.startExecution(req);
    },
    onDescribeExecution: async (req) => {
      const execution = executionByArn(req.executionArn);
      return {
        executionArn: execution.arn,
        stateMachineArn: twin()!.stateMachineArn,
        name: execution.name,
        // AWS reports ABORTED as soon as StopExecution returns; the interpreter unwinds later.
        status: execution.result?.status ?? (execution.abort.signal.aborted ? 'ABORTED' : 'RUNNING'),
        startDate: execution.startDate,
        input: JSON.stringify(execution.input),
        ...(execution.result?.error !== undefined ? { error: execution.result.error } : {}),
        ...(execution.result?.cause !== undefined ? { cause: execution.result.cause } : {}),
      };
    },
    onStopExecution: async (req) => {
      const execution = executionByArn(req.executionArn);
      // Stopping an execution that has ended changes nothing, as on AWS.
      if (!execution.result) twin()!.stopExecution(execution.name);
      return { stopDate: new Date() };
    },
    onGetExecutionHistory: async (req) => {
      const execution = executionByArn(req.executionArn);
      // The newest event only (what next-window asks for): its id is the history length.
      return { events: [{ id: execution.events, type: 'LocalEvent', timestamp: new Date() }] };
    },
  };
}
