import * as fs from 'fs';
import * as path from 'path';

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

/**
 * Builds a whole folder atomically: `fill` writes into a temporary folder, which replaces
 * `target` only once `fill` has returned. If `fill` throws, `target` is left as it was.
 */
export async function writeFolderAtomic(
  target: string,
  fill: (temporaryFolder: string) => Promise<void> | void,
): Promise<void> {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const temporary = temporarySibling(target);
  fs.mkdirSync(temporary);

  try {
    await fill(temporary);
  } catch (error) {
    fs.rmSync(temporary, { recursive: true, force: true });
    throw error;
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
