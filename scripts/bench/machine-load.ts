/**
 * How busy the machine's CPUs were, so that a phase run that shared them with other work (a test
 * suite, a type check) can be recognized: the benchmark's own processes are subtracted from the
 * machine's busy time, and what is left is "foreign" CPU time.
 */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/stat (USER_HZ): 100 on every mainstream Linux build. */
const USER_HZ = 100;

/**
 * Seconds all CPUs of the machine have spent busy (not idle, not waiting on I/O) since boot;
 * undefined where /proc/stat does not exist (not Linux).
 */
export function machineBusySeconds(): number | undefined {
  try {
    const first = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const [label, ...fields] = first.trim().split(/\s+/);
    if (label !== 'cpu') return undefined;
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is inside user.
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields.map(Number);
    return (user + nice + system + irq + softirq + steal) / USER_HZ;
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) this process has used. */
export function ownCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}
