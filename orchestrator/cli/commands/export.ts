import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { Command } from 'commander';
import { exportHead, ExportHeadResult } from '../../export/export-head';
import { verifyExport, VerifyExportResult } from '../../export/verify-export';
import { loadSnapshot } from '../../model/head-snapshot';
import { initialiseBackend } from '../../tf/backend';
import { ConfigError } from '../../util/errors';
import { componentLogger } from '../../util/logger';

/**
 * `dyncim export`: turns a training checkpoint into an ONNX head, then (unless told not to)
 * runs the exported file and the tf.js head on the same random features to prove they agree.
 */

export interface ExportCommandOptions {
  /** Checkpoint JSON written by training (checkpoints/best.json). */
  checkpoint: string;
  /** Where the .onnx file goes. */
  out: string;
  /** Extra metadata entries as 'key=value'. Default none. */
  meta?: string[];
  /** Compare the export against tf.js after writing it. Default true. */
  verify?: boolean;
}

export interface ExportCommandResult extends ExportHeadResult {
  /** Absent when verification was skipped. */
  verification?: VerifyExportResult;
}

/** Largest |ONNX - tf.js| logit difference accepted by the check after export. */
export const VERIFY_TOLERANCE = 1e-4;

const log = componentLogger('export');

/** Parses repeated `--meta key=value` options. */
export function parseMetaOptions(entries: string[]): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const entry of entries) {
    const separator = entry.indexOf('=');
    if (separator <= 0) {
      throw new ConfigError(`--meta: expected 'key=value', received '${entry}'`);
    }
    metadata[entry.slice(0, separator)] = entry.slice(separator + 1);
  }
  return metadata;
}

/** Provenance of the checkpoint: file name, sha256, and the epoch and method it records. */
function checkpointMetadata(file: string): Record<string, unknown> {
  const bytes = fs.readFileSync(file);
  const parsed = JSON.parse(bytes.toString('utf8')) as { epoch?: unknown; method?: unknown };
  return {
    file: path.basename(file),
    sha256: createHash('sha256').update(bytes).digest('hex'),
    epoch: typeof parsed.epoch === 'number' ? parsed.epoch : null,
    method: typeof parsed.method === 'string' ? parsed.method : null,
  };
}

/** Compares the written file against tf.js; removes it and throws when they disagree. */
async function checkExport(
  snapshot: ReturnType<typeof loadSnapshot>,
  outputPath: string,
): Promise<VerifyExportResult> {
  await initialiseBackend();
  const verification = await verifyExport({ snapshot, modelPath: outputPath });

  if (verification.maxAbsDifference > VERIFY_TOLERANCE || verification.argmaxDisagreements > 0) {
    fs.rmSync(outputPath, { force: true });
    throw new Error(
      `the exported head disagrees with tf.js (max logit difference ` +
        `${verification.maxAbsDifference}, ${verification.argmaxDisagreements} of ` +
        `${verification.rows} predictions differ; tolerance ${VERIFY_TOLERANCE}); ` +
        `${outputPath} was removed. This is a bug in dyncim's exporter: please report it`,
    );
  }
  log.info(verification, 'exported head agrees with tf.js');
  return verification;
}

/** What `dyncim export` does, callable without commander. */
export async function runExportCommand(
  options: ExportCommandOptions,
): Promise<ExportCommandResult> {
  const snapshot = loadSnapshot(options.checkpoint);
  const metadata = {
    ...parseMetaOptions(options.meta ?? []),
    'dyncim.checkpoint': checkpointMetadata(options.checkpoint),
  };

  const result = exportHead({ snapshot, outputPath: options.out, metadata });
  if (options.verify === false) return result;

  const verification = await checkExport(snapshot, options.out);
  return { ...result, verification };
}

function collect(value: string, previous: string[]): string[] {
  return previous.concat([value]);
}

/** Adds `export --checkpoint FILE --out FILE` to the program. */
export function registerExportCommands(program: Command): void {
  program
    .command('export')
    .description('export a trained fusion head checkpoint to ONNX')
    .requiredOption('--checkpoint <file>', 'checkpoint JSON written by training')
    .requiredOption('--out <file>', 'where the .onnx file goes')
    .option('--meta <key=value>', 'extra metadata entry, repeatable', collect, [])
    .option('--no-verify', 'skip running the export against tf.js on random features')
    .action(async (options: ExportCommandOptions) => {
      const result = await runExportCommand(options);
      log.info(
        { out: result.outputPath, bytes: result.byteLength, kind: result.schema.kind },
        'done',
      );
    });
}
