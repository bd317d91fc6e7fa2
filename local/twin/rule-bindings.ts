/**
 * How the twin plays the template's EventBridge rules: event patterns routed through the local
 * bus, `rate(...)` schedules on a sped-up clock, nightly cron schedules kept to be fired on
 * request; and what a rule target receives (its `Input`, `InputPath` or `InputTransformer`).
 */
import type { BusEvent, LocalEventBus } from '../services/event-bus';
import type { eventRules, TemplateRuleTarget } from '../services/template';
import { scheduledEvent } from './events';
import type { LocalFunction } from './task-bindings';

/** How the twin's clock is sped up: a `rate(5 minutes)` schedule runs every 300 ms. */
const SCHEDULE_SPEEDUP = 1000;

/** The target of a cron schedule (a nightly sweep), fired on request. */
export interface CronTarget {
  readonly ruleId: string;
  readonly target: TemplateRuleTarget;
  /** The function it invokes. */
  readonly fn: LocalFunction;
}

/** What the twin does with a rule target's invocation. */
export interface RuleRuntime {
  /** One invocation of a function, as Lambda runs it. */
  readonly call: (fn: LocalFunction, event: unknown) => Promise<unknown>;
  /** Registers an invocation nothing waits for, so that the twin's stop waits for it. */
  readonly track: <T>(invocation: Promise<T>) => Promise<T>;
}

/** The rules once bound: the cron targets to fire on request and the schedule timers to clear. */
export interface BoundRules {
  readonly cronTargets: CronTarget[];
  readonly timers: NodeJS.Timeout[];
}

/** Routes the template's event rules: patterns through the bus, rate schedules on a fast clock. */
export function bindRules(
  rules: ReturnType<typeof eventRules>,
  functions: ReadonlyMap<string, LocalFunction>,
  bus: LocalEventBus,
  runtime: RuleRuntime,
): BoundRules {
  const bound: BoundRules = { cronTargets: [], timers: [] };
  for (const rule of rules) {
    if (rule.state !== 'ENABLED') continue;
    for (const target of rule.targets) {
      const fn = functions.get(target.arn);
      if (!fn) continue;
      if (rule.eventPattern) {
        bus.addRule({
          name: rule.logicalId,
          eventPattern: rule.eventPattern,
          deliver: async (event) => void (await runtime.call(fn, ruleTargetInput(target, event))),
        });
      }
      const rate = rule.scheduleExpression ? parseRateMs(rule.scheduleExpression) : undefined;
      if (rule.scheduleExpression && rate === undefined) {
        bound.cronTargets.push({ ruleId: rule.logicalId, target, fn });
      }
      if (rate !== undefined) {
        // Nightly cron rules are not run by the clock: sweeps are started on request (sweep()).
        // A tick that comes while this target's previous one still runs is skipped: on the
        // sped-up clock a slow sweep (a loaded machine) would otherwise queue a new invocation
        // every few hundred ms, without bound, until the twin crawls.
        let running = false;
        const timer = setInterval(
          () => {
            if (running) return;
            running = true;
            // Nothing waits for a tick (stop() does, through track()); a failed tick is dropped, as
            // the rule fires again at the next one.
            void runtime
              .track(runtime.call(fn, ruleTargetInput(target, scheduledEvent(rule.logicalId))))
              .catch(() => undefined)
              .finally(() => (running = false));
          },
          Math.max(50, rate / SCHEDULE_SPEEDUP),
        );
        timer.unref();
        bound.timers.push(timer);
      }
    }
  }
  return bound;
}

/** `rate(5 minutes)` -> 300000; undefined for cron expressions. */
export function parseRateMs(expression: string): number | undefined {
  const m = /^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$/.exec(expression.trim());
  if (!m) return undefined;
  const unit = m[2]!.startsWith('minute') ? 60_000 : m[2]!.startsWith('hour') ? 3_600_000 : 86_400_000;
  return Number(m[1]) * unit;
}

/** The value at a JSONPath of the simple form EventBridge targets use (`$`, `$.a.b`). */
function eventPath(event: unknown, path: string): unknown {
  if (!/^\$(\.[A-Za-z0-9_-]+)*$/.test(path)) throw new Error(`the twin supports only $.a.b paths in rule targets (got ${path})`);
  let value: unknown = event;
  for (const part of path.split('.').slice(1)) value = value && typeof value === 'object' ? (value as Record<string, unknown>)[part] : undefined;
  return value;
}

/**
 * What EventBridge gives a rule target for `event`: its constant `Input`, the part at its
 * `InputPath`, its `InputTransformer` applied (a placeholder `<name>` becomes the JSON value at
 * `InputPathsMap.name`, so a string placed unquoted in a JSON template arrives quoted), or the
 * event itself.
 */
export function ruleTargetInput(target: TemplateRuleTarget, event: BusEvent): unknown {
  if (target.input !== undefined) return JSON.parse(target.input);
  if (target.inputPath !== undefined) return eventPath(event, target.inputPath);
  const transformer = target.inputTransformer;
  if (transformer === undefined) return event;
  const paths = transformer.InputPathsMap ?? {};
  const text = transformer.InputTemplate.replace(/<([A-Za-z0-9_.-]+)>/g, (placeholder, name: string) =>
    name in paths ? JSON.stringify(eventPath(event, paths[name]!) ?? null) : placeholder,
  );
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`rule target input template did not give JSON (the twin supports JSON templates only): ${text}`);
  }
}
