import * as fs from 'fs';
import * as path from 'path';
import { InputError } from './errors';

/**
 * Atomic writes: data goes to a temporary sibling first and is renamed into place, so a crash
 * or a bad input half way never leaves a truncated file where a good one stood.
 */

function temporarySibling(target: string): string {
  const suffix = `${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2, 8)}`;
  return path.join(path.dirname(target), `.${path.basename(target)}.tmp-${suffix}`);
}

/** Writes bytes or text to `target` atomically, creating its folder if needed. */
export function writeFileAtomic(target: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const temporary = temporarySibling(target);

  try {
    fs.writeFileSync(temporary, data);
    fs.renameSync(temporary, target);
  } catch (error) {
    fs.rmSync(temporary, { force: true });
    throw error;
  }
}

/** Writes a JSON document (two-space indent, trailing newline) atomically. */
export function writeJsonAtomic(target: string, value: unknown): void {
  writeFileAtomic(target, JSON.stringify(value, null, 2) + '\n');
}

export interface FolderAtomicOptions {
  /**
   * A file every earlier output of this kind holds (e.g. 'config.json'). An existing `target`
   * is replaced only if it is an empty folder or holds this file, so a mistyped --out never
   * deletes unrelated data.
   */
  marker?: string;
}

/** Temporary folders being filled now, removed if the process is interrupted. */
const activeTemporaries = new Set<string>();
let signalHandlersInstalled = false;

function installSignalCleanup(): void {
  if (signalHandlersInstalled) return;
  signalHandlersInstalled = true;

  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.once(signal, () => {
      for (const folder of activeTemporaries) fs.rmSync(folder, { recursive: true, force: true });
      process.stderr.write(`\ninterrupted (${signal}); earlier outputs are as they were\n`);
      process.exit(code);
    });
  }
}

/** Removes temporary siblings of `target` left by processes that no longer run. */
function removeStaleTemporaries(target: string): void {
  const folder = path.dirname(target);
  const prefix = `.${path.basename(target)}.tmp-`;
  if (!fs.existsSync(folder)) return;

  for (const name of fs.readdirSync(folder)) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('.')[0]);
    if (!Number.isInteger(pid) || processAlive(pid)) continue;
    fs.rmSync(path.join(folder, name), { recursive: true, force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Refuses targets whose replacement would destroy something that is not an earlier output.
 * Builders call it up front too, to fail before spending minutes on work they cannot write.
 */
export function checkReplaceable(target: string, marker?: string): void {
  const resolved = path.resolve(target);
  const cwd = process.cwd();
  if (
    resolved === cwd ||
    cwd.startsWith(resolved + path.sep) ||
    resolved === path.parse(resolved).root
  ) {
    throw new InputError(
      'is the working folder or one above it; give a new folder to write',
      target,
    );
  }
  if (!fs.existsSync(resolved)) return;

  if (!fs.statSync(resolved).isDirectory()) {
    throw new InputError(
      'exists and is a file, not an output folder; refusing to replace it',
      target,
    );
  }
  const entries = fs.readdirSync(resolved);
  if (marker && entries.length > 0 && !entries.includes(marker)) {
    throw new InputError(
      `exists and is not an earlier output (it has no ${marker}); refusing to replace it: ` +
        'choose a new folder or remove it yourself',
      target,
    );
  }
}

function makeParentFolder(target: string): void {
  try {
    fs.mkdirSync(path.dirname(target), { recursive: true });
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new InputError(`cannot create its parent folder (${reason})`, target);
  }
}

/**
 * Builds a whole folder atomically: `fill` writes into a temporary folder, which replaces
 * `target` only once `fill` has returned. If `fill` throws or the process is interrupted,
 * `target` is left as it was and the temporary folder is removed.
 */
export async function writeFolderAtomic(
  target: string,
  fill: (temporaryFolder: string) => Promise<void> | void,
  options: FolderAtomicOptions = {},
): Promise<void> {
  checkReplaceable(target, options.marker);
  makeParentFolder(target);
  removeStaleTemporaries(target);
  installSignalCleanup();
  const temporary = temporarySibling(target);
  fs.mkdirSync(temporary);
  activeTemporaries.add(temporary);

  try {
    await fill(temporary);
  } catch (error) {
    fs.rmSync(temporary, { recursive: true, force: true });
    throw error;
  } finally {
    activeTemporaries.delete(temporary);
  }

  const previous = fs.existsSync(target) ? `${temporary}.previous` : undefined;
  if (previous) fs.renameSync(target, previous);
  fs.renameSync(temporary, target);
  if (previous) fs.rmSync(previous, { recursive: true, force: true });
}

/** Appends one line to a file (used for metrics.jsonl, where each line is a complete record). */
export function appendLine(target: string, line: string): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.appendFileSync(target, line.endsWith('\n') ? line : line + '\n');
}
