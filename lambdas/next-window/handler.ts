import { nextWindow, type WindowResult, type WindowState } from './next-window';

/** Workflow task `NextWindow`. */
export const handler = async (event: WindowState): Promise<WindowResult> => nextWindow(event);
