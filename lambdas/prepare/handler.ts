import { awsClients } from '../shared/clients';
import { handlerConfig } from '../shared/config';
import { prepareRun, type PrepareEvent, type PrepareResult } from './prepare';

/** Workflow task `Prepare`. */
export const handler = async (event: PrepareEvent): Promise<PrepareResult> => {
  const config = handlerConfig();
  return prepareRun(awsClients(), { bucket: config.bucket, pipeline: config.pipeline }, event);
};
