/**
 * The Step Functions API calls about executions (`StartExecution`, `DescribeExecution`,
 * `GetExecutionHistory`) as the twin answers them to the handlers that make them through the SDK.
 */
import { StepFunctionsError, type StartExecutionRequest, type StepFunctionsApiOptions } from '../services/step-functions-api';
import type { TwinExecution } from '../twin';

/** What the calls need of the running twin. */
export interface ExecutionHost {
  readonly executions: ReadonlyMap<string, TwinExecution>;
  readonly stateMachineArn: string;
  startExecution(req: Omit<StartExecutionRequest, 'stateMachineArn'>): { executionArn: string; startDate: Date };
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
        status: execution.result?.status ?? 'RUNNING',
        startDate: execution.startDate,
        input: JSON.stringify(execution.input),
      };
    },
    onGetExecutionHistory: async (req) => {
      const execution = executionByArn(req.executionArn);
      // The newest event only (what next-window asks for): its id is the history length.
      return { events: [{ id: execution.events, type: 'LocalEvent', timestamp: new Date() }] };
    },
  };
}
