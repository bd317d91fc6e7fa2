import {
  DescribeExecutionCommand,
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import { StepFunctionsError, StepFunctionsApi, stepFunctionsApiEnvironment } from '../../../local/services/step-functions-api';

describe('StepFunctionsApi', () => {
  const executions = new Map<string, Date>();
  const service = new StepFunctionsApi({
    async onStartExecution({ stateMachineArn, name, input }) {
      const executionArn = `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${name ?? 'auto'}`;
      if (executions.has(executionArn)) throw new StepFunctionsError('ExecutionAlreadyExists', `Execution Already Exists: '${executionArn}'`);
      if (input === 'boom') throw new Error('delegate broke');
      const startDate = new Date('2024-05-01T12:00:00.250Z');
      executions.set(executionArn, startDate);
      return { executionArn, startDate };
    },
    async onDescribeExecution({ executionArn }) {
      const startDate = executions.get(executionArn);
      if (!startDate) throw new StepFunctionsError('ExecutionDoesNotExist', 'Execution Does Not Exist');
      return {
        executionArn,
        status: stopped.has(executionArn) ? 'ABORTED' : 'RUNNING',
        startDate,
        stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:M',
      };
    },
    async onStopExecution({ executionArn, error, cause }) {
      if (!executions.has(executionArn)) throw new StepFunctionsError('ExecutionDoesNotExist', 'Execution Does Not Exist');
      stopped.set(executionArn, `${error}: ${cause}`);
      return { stopDate: new Date('2024-05-01T12:05:00Z') };
    },
  });
  const stopped = new Map<string, string>();
  let sfn: SFNClient;

  beforeAll(async () => {
    const { endpoint } = await service.start();
    sfn = new SFNClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 });
  });

  afterAll(async () => {
    sfn.destroy();
    await service.stop();
  });

  it('issues distinct tokens and counts the pending ones', () => {
    const before = service.pending();
    const tokens = new Set(Array.from({ length: 100 }, () => service.newToken()));
    expect(tokens.size).toBe(100);
    expect(service.pending()).toBe(before + 100);
    tokens.forEach((t) => service.expire(t));
    expect(service.pending()).toBe(before);
  });

  it('resolves wait() with the parsed output of SendTaskSuccess', async () => {
    const token = service.newToken();
    const waiting = service.wait(token);
    await sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: JSON.stringify({ jobArn: 'arn:j', status: 'Completed' }) }));
    await expect(waiting).resolves.toEqual({ jobArn: 'arn:j', status: 'Completed' });
    expect(service.wait(token)).toBe(waiting);
  });

  it('buffers a completion that arrives before anyone waits', async () => {
    const ok = service.newToken();
    const failed = service.newToken();
    await sfn.send(new SendTaskSuccessCommand({ taskToken: ok, output: '"early"' }));
    await sfn.send(new SendTaskFailureCommand({ taskToken: failed, error: 'JobFailed', cause: 'late waiter' }));
    expect(service.pending()).toBe(0);
    await expect(service.wait(ok)).resolves.toBe('early');
    await expect(service.wait(failed)).rejects.toMatchObject({ name: 'JobFailed', message: 'late waiter' });
  });

  it('rejects wait() with an Error named after SendTaskFailure error, message = cause', async () => {
    const token = service.newToken();
    const waiting = service.wait(token).catch((e: unknown) => e);
    await sfn.send(new SendTaskFailureCommand({ taskToken: token, error: 'Bedrock.JobExpired', cause: 'job expired after 72h' }));
    const err = await waiting;
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ name: 'Bedrock.JobExpired', message: 'job expired after 72h' });
  });

  it('fails with a generic name when SendTaskFailure gives no error', async () => {
    const token = service.newToken();
    await sfn.send(new SendTaskFailureCommand({ taskToken: token }));
    await expect(service.wait(token)).rejects.toMatchObject({ name: 'Error', message: '' });
  });

  it('answers InvalidToken for a token it never issued, through the SDK', async () => {
    const err = await sfn.send(new SendTaskSuccessCommand({ taskToken: 'nope', output: '{}' })).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'InvalidToken', $metadata: { httpStatusCode: 400 } });
    const hb = await sfn.send(new SendTaskHeartbeatCommand({ taskToken: 'nope' })).catch((e: unknown) => e);
    expect(hb).toMatchObject({ name: 'InvalidToken' });
    await expect(service.wait('nope')).rejects.toMatchObject({ name: 'InvalidToken' });
  });

  it('answers TaskTimedOut for a token already completed or expired', async () => {
    const token = service.newToken();
    await sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: '1' }));
    for (const command of [
      new SendTaskSuccessCommand({ taskToken: token, output: '2' }),
      new SendTaskFailureCommand({ taskToken: token, error: 'X' }),
      new SendTaskHeartbeatCommand({ taskToken: token }),
    ]) {
      const err = await sfn.send(command as SendTaskSuccessCommand).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'TaskTimedOut', $metadata: { httpStatusCode: 400 } });
    }
    await expect(service.wait(token)).resolves.toBe(1);

    const expired = service.newToken();
    const waiting = service.wait(expired);
    service.expire(expired);
    await expect(waiting).rejects.toMatchObject({ name: 'States.Timeout' });
    const err = await sfn.send(new SendTaskSuccessCommand({ taskToken: expired, output: '{}' })).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'TaskTimedOut' });
  });

  it('accepts heartbeats on an open token', async () => {
    const token = service.newToken();
    await sfn.send(new SendTaskHeartbeatCommand({ taskToken: token }));
    await sfn.send(new SendTaskHeartbeatCommand({ taskToken: token }));
    expect(service.heartbeats(token)).toBe(2);
    expect(service.pending()).toBeGreaterThan(0);
    service.expire(token);
  });

  it('answers InvalidOutput for an output that is not JSON and ValidationException for one over 256 KiB', async () => {
    const token = service.newToken();
    const bad = await sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: '{not json' })).catch((e: unknown) => e);
    expect(bad).toMatchObject({ name: 'InvalidOutput' });
    const big = await sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: JSON.stringify('x'.repeat(262_144)) })).catch((e: unknown) => e);
    expect(big).toMatchObject({ name: 'ValidationException' });
    // Neither closed the token.
    await sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: '{}' }));
    await expect(service.wait(token)).resolves.toEqual({});
  });

  it('measures inputs and outputs in UTF-8 bytes, as Step Functions does: 256 KiB of multi-byte text is far fewer characters', async () => {
    // 100,000 characters of 3 bytes each: 300,000 bytes, over 262,144.
    const wide = JSON.stringify('日'.repeat(100_000));
    const token = service.newToken();
    const big = await sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: wide })).catch((e: unknown) => e);
    expect(big).toMatchObject({ name: 'ValidationException' });
    service.expire(token);
    const arn = 'arn:aws:states:us-east-1:123456789012:stateMachine:Pipeline';
    const start = await sfn.send(new StartExecutionCommand({ stateMachineArn: arn, name: 'wide-1', input: wide })).catch((e: unknown) => e);
    expect(start).toMatchObject({ name: 'ValidationException', message: expect.stringContaining("'input'") });
  });

  it.each(['with space', 'a/b', 'a:b', 'a{b}', 'what?', 'tab\there', 'x\u0085', 'lone\ud800', ''])(
    'refuses the execution name %j with InvalidName, as StartExecution does',
    async (name) => {
      const arn = 'arn:aws:states:us-east-1:123456789012:stateMachine:Pipeline';
      const err = await sfn.send(new StartExecutionCommand({ stateMachineArn: arn, name, input: '{}' })).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'InvalidName' });
    },
  );

  it('accepts names of letters, digits, dashes, underscores and non-ASCII letters', async () => {
    const arn = 'arn:aws:states:us-east-1:123456789012:stateMachine:Pipeline';
    for (const name of ['run_1-ok', 'Lauf-über-日本']) {
      await expect(sfn.send(new StartExecutionCommand({ stateMachineArn: arn, name, input: '{}' }))).resolves.toMatchObject({
        executionArn: expect.stringContaining(name),
      });
    }
  });

  it('speaks the awsJson1_0 wire format', async () => {
    const res = await fetch(service.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AWSStepFunctions.SendTaskSuccess' },
      body: JSON.stringify({ taskToken: 'unknown', output: '{}' }),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-amzn-errortype')).toBe('InvalidToken');
    expect(res.headers.get('content-type')).toBe('application/x-amz-json-1.0');
    expect(await res.json()).toEqual({ __type: 'InvalidToken', message: 'Invalid Token' });

    const unknown = await fetch(service.endpoint, {
      method: 'POST',
      headers: { 'x-amz-target': 'AWSStepFunctions.ListStateMachines' },
      body: '{}',
    });
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { __type: string }).__type).toBe('UnknownOperationException');
  });

  it('delegates StartExecution and DescribeExecution, with dates as epoch seconds', async () => {
    const arn = 'arn:aws:states:us-east-1:123456789012:stateMachine:Pipeline';
    const started = await sfn.send(new StartExecutionCommand({ stateMachineArn: arn, name: 'run-1', input: '{}' }));
    expect(started.executionArn).toBe('arn:aws:states:us-east-1:123456789012:execution:Pipeline:run-1');
    expect(started.startDate).toEqual(new Date('2024-05-01T12:00:00.250Z'));

    const dup = await sfn.send(new StartExecutionCommand({ stateMachineArn: arn, name: 'run-1' })).catch((e: unknown) => e);
    expect(dup).toMatchObject({ name: 'ExecutionAlreadyExists' });

    const described = await sfn.send(new DescribeExecutionCommand({ executionArn: started.executionArn }));
    expect(described).toMatchObject({ status: 'RUNNING', startDate: new Date('2024-05-01T12:00:00.250Z') });
    const missing = await sfn.send(new DescribeExecutionCommand({ executionArn: 'arn:x' })).catch((e: unknown) => e);
    expect(missing).toMatchObject({ name: 'ExecutionDoesNotExist' });
  });

  it('delegates StopExecution (what `bedrock-batch stop` calls), with its error and cause', async () => {
    const arn = 'arn:aws:states:us-east-1:123456789012:stateMachine:Pipeline';
    const started = await sfn.send(new StartExecutionCommand({ stateMachineArn: arn, name: 'stop-1', input: '{}' }));
    const res = await sfn.send(new StopExecutionCommand({ executionArn: started.executionArn, error: 'RunStopped', cause: 'by hand' }));
    expect(res.stopDate).toEqual(new Date('2024-05-01T12:05:00Z'));
    expect(stopped.get(started.executionArn!)).toBe('RunStopped: by hand');
    expect(await sfn.send(new DescribeExecutionCommand({ executionArn: started.executionArn }))).toMatchObject({ status: 'ABORTED' });
    const missing = await sfn.send(new StopExecutionCommand({ executionArn: 'arn:none' })).catch((e: unknown) => e);
    expect(missing).toMatchObject({ name: 'ExecutionDoesNotExist' });
  });

  it('returns a delegate error without a Step Functions name as a 500 InternalServerError', async () => {
    const err = await sfn
      .send(new StartExecutionCommand({ stateMachineArn: 'arn:aws:states:us-east-1:1:stateMachine:M', name: 'b', input: 'boom' }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'InternalServerError', $metadata: { httpStatusCode: 500 } });
  });

  it('answers UnknownOperationException for StartExecution when nothing is delegated', async () => {
    const bare = new StepFunctionsApi();
    const { endpoint } = await bare.start();
    const client = new SFNClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    try {
      const err = await client.send(new StartExecutionCommand({ stateMachineArn: 'arn:aws:states:us-east-1:1:stateMachine:M' })).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'UnknownOperationException' });
    } finally {
      client.destroy();
      await bare.stop();
      await bare.stop();
    }
  });

  it('serves an unmodified client configured only through AWS_ENDPOINT_URL_SFN', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, stepFunctionsApiEnvironment(service.endpoint), {
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'x',
      AWS_SECRET_ACCESS_KEY: 'x',
    });
    const client = new SFNClient({});
    try {
      const token = service.newToken();
      await client.send(new SendTaskSuccessCommand({ taskToken: token, output: '{"ok":true}' }));
      await expect(service.wait(token)).resolves.toEqual({ ok: true });
    } finally {
      client.destroy();
      process.env = saved;
    }
  });
});
