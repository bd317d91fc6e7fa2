/** Walking an Amazon States Language definition's states. */

type Json = Record<string, unknown>;

/** Visits every state of a definition with its name, the states of Map iterations and Parallel branches included. */
export function forEachState(machine: Json, visit: (state: Json, name: string) => void): void {
  for (const [name, state] of Object.entries((machine.States as Record<string, Json> | undefined) ?? {})) {
    visit(state, name);
    const processor = (state.ItemProcessor ?? state.Iterator) as Json | undefined;
    if (processor) forEachState(processor, visit);
    for (const branch of (state.Branches as Json[] | undefined) ?? []) forEachState(branch, visit);
  }
}
