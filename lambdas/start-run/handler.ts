import { awsClients } from '../shared/clients';
import { handlerConfig } from '../shared/config';
import type { StartOutcome } from './claim-and-start';
import { startFromObject, type ObjectCreatedEvent } from './start-run';
import { startSweep, type SweepEvent } from './sweep';

/** Target of the inbox `Object Created` rule and of the nightly sweep schedules. */
export const handler = async (event: ObjectCreatedEvent | SweepEvent): Promise<StartOutcome> => {
  const clients = awsClients();
  const config = handlerConfig();
  if (!config.stateMachineArn) throw new Error('environment variable STATE_MACHINE_ARN is not set');
  const deps = { ...clients, table: config.table, stateMachineArn: config.stateMachineArn, bucket: config.bucket, pipeline: config.pipeline };
  return 'sweep' in event ? startSweep(deps, event) : startFromObject(deps, event);
};
