import pino, { Logger } from 'pino';

/**
 * One pino logger for the process. Attached to a terminal it prints readable lines; otherwise
 * it writes JSON lines, one per event, which scripts and log collectors can parse.
 * Each component takes a child logger that names it (`component: 'trainer'`, ...).
 */

let root: Logger | undefined;

function buildRootLogger(): Logger {
  const level = process.env.DYNCIM_LOG_LEVEL ?? (process.env.JEST_WORKER_ID ? 'silent' : 'info');
  const pretty = process.stderr.isTTY && process.env.DYNCIM_LOG_FORMAT !== 'json';

  if (pretty) {
    // pino-pretty in-process and synchronous: a worker thread would reorder lines with the
    // progress bar and could drop the last lines when a job exits on an error
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const pinoPretty = require('pino-pretty');
    const stream = pinoPretty({
      destination: 2,
      sync: true,
      colorize: true,
      translateTime: 'HH:MM:ss',
      ignore: 'pid,hostname',
    });
    return pino({ level }, stream);
  }

  return pino({ level }, pino.destination({ dest: 2, sync: true }));
}

/** The process-wide logger. */
export function rootLogger(): Logger {
  root ??= buildRootLogger();
  return root;
}

/** A child logger for one component; `bindings` are repeated on every line it writes. */
export function componentLogger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return rootLogger().child({ component, ...bindings });
}

/** Replaces the process-wide logger (tests capture log lines this way). */
export function setRootLogger(logger: Logger): void {
  root = logger;
}
