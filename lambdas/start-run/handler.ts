import { awsClients } from '../shared/clients';
import { handlerConfig } from '../shared/config';
import { startFromObject, startSweep, type ObjectCreatedEvent, type StartOutcome, type SweepEvent } from './start-run';

/** Target of the inbox `Object Created` rule and of the nightly sweep schedules. */
export const handler = async (event: ObjectCreatedEvent | SweepEvent): Promise<StartOutcome> => {
  const clients = awsClients();
  const config = handlerConfig();
  if (!config.stateMachineArn) throw new Error('environment variable STATE_MACHINE_ARN is not set');
  const deps = { ...clients, table: config.table, stateMachineArn: config.stateMachineArn, bucket: config.bucket, pipeline: config.pipeline };
  return 'sweep' in event ? startSweep(deps, event) : startFromObject(deps, event);
};
