import cliProgress from 'cli-progress';

/**
 * A progress bar on stderr when it is a terminal; nothing otherwise (logs carry progress in
 * files and CI, where a redrawn bar would only add noise).
 */
export interface Progress {
  tick(values?: Record<string, number>): void;
  stop(): void;
}

const SILENT: Progress = { tick: () => undefined, stop: () => undefined };

export function createProgress(label: string, total: number): Progress {
  if (!process.stderr.isTTY || process.env.JEST_WORKER_ID || total <= 1) return SILENT;

  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {value}/{total} {extra} eta {eta_formatted}`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { extra: '' });
  let count = 0;

  return {
    tick(values = {}) {
      count++;
      const extra = Object.entries(values)
        .map(([key, value]) => `${key}=${Number.isInteger(value) ? value : value.toFixed(4)}`)
        .join(' ');
      bar.update(count, { extra });
    },
    stop() {
      bar.stop();
    },
  };
}
