/**
 * EventBridge event-pattern matching, for routing the twin's events (Bedrock job state changes,
 * S3 Object Created, the nightly schedule) by the deployed rules' own patterns.
 *
 * Semantics follow EventBridge content filtering (aws/event-ruler):
 * - every field named in the pattern must match (AND); `$or: [p1, p2, ...]` matches if any
 *   sub-pattern matches, and may appear at any level;
 * - a leaf of the pattern is an array of matchers; it matches if any matcher matches any of
 *   the event field's values; an array in the event (nested arrays flattened) offers each
 *   element as a value, and an array of objects matches a nested pattern if one element does;
 * - only leaf values (strings, numbers, booleans, null) are values: an object is not, so
 *   `exists: true` does not match it and `exists: false` does;
 * - every matcher except `exists: false` needs the field to be present: a missing field
 *   matches neither an exact value nor `anything-but`;
 * - strings and numbers never equal each other (`"5"` is not `5`); numbers compare by value.
 */
import { BlockList, isIP } from 'node:net';

/** An EventBridge event pattern (the `EventPattern` of a rule, parsed). */
export type EventPattern = Record<string, unknown>;

/**
 * Tells whether an event matches an EventBridge event pattern.
 *
 * Supported matchers: exact string / number / boolean / null values, `prefix`, `suffix`
 * (each also with `{ "equals-ignore-case": ... }`), `equals-ignore-case`, `wildcard`,
 * `anything-but` (a value, a list of values, `{prefix}`, `{suffix}`, `{wildcard}`,
 * `{equals-ignore-case}`), `exists`, `numeric` ranges, `cidr`, and `$or`.
 *
 * @throws Error for a pattern EventBridge would reject (a leaf that is not an array, an unknown
 *   or malformed matcher), so a broken rule fails loudly instead of never matching
 */
export function matchesEventPattern(pattern: object, event: object): boolean {
  if (!isPlainObject(pattern)) throw new Error('Invalid event pattern: the pattern must be a JSON object');
  return matchesObject(pattern, event);
}

function matchesObject(pattern: Record<string, unknown>, event: unknown): boolean {
  const fields = isPlainObject(event) ? event : {};
  for (const [key, expected] of Object.entries(pattern)) {
    if (key === '$or' && Array.isArray(expected)) {
      if (!expected.every(isPlainObject)) throw new Error('Invalid event pattern: "$or" takes an array of patterns');
      if (!expected.some((alternative) => matchesObject(alternative, event))) return false;
      continue;
    }
    const actual = Object.prototype.hasOwnProperty.call(fields, key) ? fields[key] : undefined;
    if (Array.isArray(expected)) {
      if (!matchesLeaf(expected, leafValues(actual), key)) return false;
    } else if (isPlainObject(expected)) {
      const candidates = objectValues(actual);
      // No object there: the nested fields are all absent, which only `exists: false` matches.
      if (candidates.length === 0 ? !matchesObject(expected, {}) : !candidates.some((c) => matchesObject(expected, c))) {
        return false;
      }
    } else {
      throw new Error(`Invalid event pattern: the value of "${key}" must be an array or an object`);
    }
  }
  return true;
}

type Leaf = string | number | boolean | null;

/** The leaf values of an event field: itself, or its elements (nested arrays flattened). */
function leafValues(value: unknown): Leaf[] {
  if (value === undefined) return [];
  if (Array.isArray(value)) return value.flatMap(leafValues);
  if (isPlainObject(value)) return [];
  return [value as Leaf];
}

/** The objects of an event field: itself, or the objects among its elements. */
function objectValues(value: unknown): Array<Record<string, unknown>> {
  if (Array.isArray(value)) return value.flatMap(objectValues);
  return isPlainObject(value) ? [value] : [];
}

function matchesLeaf(matchers: unknown[], values: Leaf[], key: string): boolean {
  return matchers.some((matcher) => {
    if (isPlainObject(matcher) && 'exists' in matcher) {
      if (typeof matcher.exists !== 'boolean' || Object.keys(matcher).length !== 1) {
        throw new Error(`Invalid event pattern: "exists" of "${key}" must be true or false`);
      }
      return matcher.exists === values.length > 0;
    }
    const test = compileMatcher(matcher, key);
    return values.some(test);
  });
}

type ValueTest = (value: Leaf) => boolean;

function compileMatcher(matcher: unknown, key: string): ValueTest {
  if (matcher === null || typeof matcher === 'string' || typeof matcher === 'number' || typeof matcher === 'boolean') {
    return (value) => value === matcher;
  }
  if (!isPlainObject(matcher) || Object.keys(matcher).length !== 1) {
    throw new Error(`Invalid event pattern: bad matcher for "${key}": ${JSON.stringify(matcher)}`);
  }
  const [operator, operand] = Object.entries(matcher)[0]!;
  switch (operator) {
    case 'prefix':
      return stringTest(
        operand,
        key,
        operator,
        (value, s) => value.startsWith(s),
        (value, s) => value.toLowerCase().startsWith(s.toLowerCase()),
      );
    case 'suffix':
      return stringTest(
        operand,
        key,
        operator,
        (value, s) => value.endsWith(s),
        (value, s) => value.toLowerCase().endsWith(s.toLowerCase()),
      );
    case 'equals-ignore-case': {
      const s = requireString(operand, key, operator);
      return (value) => typeof value === 'string' && value.toLowerCase() === s.toLowerCase();
    }
    case 'wildcard': {
      const re = wildcardRegExp(requireString(operand, key, operator));
      return (value) => typeof value === 'string' && re.test(value);
    }
    case 'anything-but':
      return anythingBut(operand, key);
    case 'numeric':
      return numericTest(operand, key);
    case 'cidr':
      return cidrTest(operand, key);
    default:
      throw new Error(`Invalid event pattern: unsupported matcher "${operator}" for "${key}"`);
  }
}

/** `prefix` / `suffix`: a string, or `{ "equals-ignore-case": string }`. Strings only. */
function stringTest(
  operand: unknown,
  key: string,
  operator: string,
  exact: (value: string, s: string) => boolean,
  ignoreCase: (value: string, s: string) => boolean,
): ValueTest {
  if (isPlainObject(operand) && Object.keys(operand).length === 1 && 'equals-ignore-case' in operand) {
    const s = requireString(operand['equals-ignore-case'], key, `${operator}.equals-ignore-case`);
    return (value) => typeof value === 'string' && ignoreCase(value, s);
  }
  const s = requireString(operand, key, operator);
  return (value) => typeof value === 'string' && exact(value, s);
}

function anythingBut(operand: unknown, key: string): ValueTest {
  if (isPlainObject(operand)) {
    // A value that is not a string cannot start with, end with or look like a string: it matches.
    const ops = Object.keys(operand);
    const op = ops[0];
    if (ops.length !== 1 || !['prefix', 'suffix', 'wildcard', 'equals-ignore-case'].includes(op!)) {
      throw new Error(`Invalid event pattern: "anything-but" of "${key}" does not take ${JSON.stringify(operand)}`);
    }
    if (op === 'equals-ignore-case' && Array.isArray(operand[op])) {
      const lowered = (operand[op] as unknown[]).map((s) => requireString(s, key, 'anything-but.equals-ignore-case').toLowerCase());
      return (value) => typeof value !== 'string' || !lowered.includes(value.toLowerCase());
    }
    const inner = compileMatcher(operand, key);
    return (value) => !inner(value);
  }
  const excluded = Array.isArray(operand) ? operand : [operand];
  for (const v of excluded) {
    if (typeof v !== 'string' && typeof v !== 'number') {
      throw new Error(`Invalid event pattern: "anything-but" of "${key}" takes strings or numbers`);
    }
  }
  return (value) => !excluded.includes(value as string | number);
}

const NUMERIC_OPS: Record<string, (a: number, b: number) => boolean> = {
  '=': (a, b) => a === b,
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
};

/** `numeric`: `[op, n]` or `[op, n, op, n]` (a range), numbers only. */
function numericTest(operand: unknown, key: string): ValueTest {
  if (!Array.isArray(operand) || operand.length === 0 || operand.length % 2 !== 0 || operand.length > 4) {
    throw new Error(`Invalid event pattern: "numeric" of "${key}" must be [op, number] or [op, number, op, number]`);
  }
  const conditions: ValueTest[] = [];
  for (let i = 0; i < operand.length; i += 2) {
    const compare = NUMERIC_OPS[operand[i] as string];
    const bound = operand[i + 1];
    if (!compare || typeof bound !== 'number') {
      throw new Error(`Invalid event pattern: bad "numeric" condition for "${key}": ${JSON.stringify(operand)}`);
    }
    conditions.push((value) => compare(value as number, bound));
  }
  return (value) => typeof value === 'number' && conditions.every((c) => c(value));
}

function cidrTest(operand: unknown, key: string): ValueTest {
  const text = requireString(operand, key, 'cidr');
  const [address, bits] = text.split('/');
  const family = isIP(address ?? '');
  const prefix = Number(bits);
  if (!family || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) {
    throw new Error(`Invalid event pattern: bad "cidr" for "${key}": ${text}`);
  }
  const list = new BlockList();
  const type = family === 4 ? 'ipv4' : 'ipv6';
  list.addSubnet(address!, prefix, type);
  return (value) => typeof value === 'string' && isIP(value) === family && list.check(value, type);
}

/** `*` matches any run of characters; `\*` is a literal star and `\\` a literal backslash. */
function wildcardRegExp(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\' && (pattern[i + 1] === '*' || pattern[i + 1] === '\\')) {
      source += escapeRegExp(pattern[i + 1]!);
      i++;
    } else if (c === '*') {
      source += '.*';
    } else {
      source += escapeRegExp(c);
    }
  }
  return new RegExp(`^${source}$`, 's');
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function requireString(value: unknown, key: string, operator: string): string {
  if (typeof value !== 'string') throw new Error(`Invalid event pattern: "${operator}" of "${key}" takes a string`);
  return value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
