import pino, { Logger } from 'pino';

/**
 * One pino logger for the process. It prints readable lines on stderr (coloured on a
 * terminal); DYNCIM_LOG_FORMAT=json switches to JSON lines, one per event, for scripts and log
 * collectors. DYNCIM_LOG_LEVEL sets the level (default info).
 * Each component takes a child logger that names it (`component: 'trainer'`, ...).
 */

let root: Logger | undefined;

function buildRootLogger(): Logger {
  const level = process.env.DYNCIM_LOG_LEVEL ?? (process.env.JEST_WORKER_ID ? 'silent' : 'info');
  // readable lines by default, in a terminal or a log file alike; JSON lines on request
  const pretty = process.env.DYNCIM_LOG_FORMAT !== 'json';

  if (pretty) {
    // pino-pretty in-process and synchronous: a worker thread would reorder lines with the
    // progress bar and could drop the last lines when a job exits on an error
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const pinoPretty = require('pino-pretty');
    const stream = pinoPretty({
      destination: 2,
      sync: true,
      colorize: Boolean(process.stderr.isTTY),
      translateTime: 'HH:MM:ss',
      ignore: 'pid,hostname',
      singleLine: true,
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
