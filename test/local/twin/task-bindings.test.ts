import { runStateMachine } from '../../../local/services/step-functions';
import { StepFunctionsApi } from '../../../local/services/step-functions-api';
import { taskHandlers } from '../../../local/twin/task-bindings';

const FN = 'arn:aws:lambda:us-east-1:123456789012:function:Submit';
/** One `.waitForTaskToken` task, retried once, as SubmitJob is. */
const definition = {
  StartAt: 'Submit',
  States: {
    Submit: {
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
      Parameters: { FunctionName: FN, Payload: { 'taskToken.$': '$$.Task.Token' } },
      Retry: [{ ErrorEquals: ['States.ALL'], MaxAttempts: 1, IntervalSeconds: 1 }],
      End: true,
    },
  },
};

test("a failed attempt's task token is closed: a later completion answers TaskTimedOut, as on AWS", async () => {
  const sfn = new StepFunctionsApi();
  const tokens: string[] = [];
  const outcome = await runStateMachine(
    definition,
    {},
    {
      taskHandlers: taskHandlers(definition, {
        invoke: async (_state, _fn, payload) => {
          const { taskToken } = payload as { taskToken: string };
          tokens.push(taskToken);
          // The first attempt's function fails; the retry completes its own token.
          if (tokens.length === 1) throw Object.assign(new Error('boom'), { name: 'Lambda.ServiceException' });
          sfn.sendTaskSuccess(taskToken, { done: true });
          return null;
        },
        waitForToken: (token) => sfn.wait(token),
        closeToken: (token) => sfn.expire(token),
      }),
      newToken: () => sfn.newToken(),
      retryIntervalMs: 0,
    },
  );
  expect(outcome.status).toBe('SUCCEEDED');
  expect(tokens).toHaveLength(2);
  expect(() => sfn.sendTaskSuccess(tokens[0]!, { late: true })).toThrow(expect.objectContaining({ name: 'TaskTimedOut' }));
  expect(sfn.pending()).toBe(0);
});
