import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { Command } from 'commander';
import { exportHead, exportHeadChecked, ExportHeadResult } from '../../export/export-head';
import { verifyExport, VerifyExportResult } from '../../export/verify-export';
import { HeadSnapshot } from '../../model/fusion-head';
import { loadSnapshot } from '../../model/head-snapshot';
import { initialiseBackend } from '../../tf/backend';
import { ConfigError, InputError } from '../../util/errors';
import { componentLogger } from '../../util/logger';

/**
 * `dyncim export`: turns a training checkpoint into an ONNX head, then (unless told not to)
 * runs the exported file and the tf.js head on the same random features to prove they agree.
 * A failed export leaves an existing --out file as it was.
 */

export interface ExportCommandOptions {
  /** Checkpoint JSON written by training (checkpoints/best.json). */
  checkpoint: string;
  /** Where the .onnx file goes. */
  out: string;
  /** Extra metadata entries as 'key=value'. Default none. */
  meta?: string[];
  /**
   * Compare the export against tf.js before it replaces --out. Default true. Without it, weights
   * whose logits overflow float32 go unnoticed.
   */
  verify?: boolean;
}

export interface ExportCommandResult extends ExportHeadResult {
  /** Absent when verification was skipped. */
  verification?: VerifyExportResult;
}

/** Largest |ONNX - tf.js| logit difference accepted by the check after export. */
export const VERIFY_TOLERANCE = 1e-4;

/**
 * A difference up to this fraction of the largest logit is float32 rounding (about 80 units
 * in the last place), not a wrong export: it exceeds VERIFY_TOLERANCE only for logits over 10.
 */
const ROUNDING_TOLERANCE = 1e-5;

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

/** Largest |weight| of a snapshot, for messages about extreme weights. */
function largestWeight(snapshot: HeadSnapshot): number {
  const arrays = [snapshot.fusionBias, snapshot.inferenceModalityWeights];
  for (const modality of snapshot.modalities) {
    arrays.push(
      modality.adapterWeight,
      modality.adapterBias,
      modality.classifierWeight,
      modality.classifierBias,
      modality.fusionWeight,
    );
  }
  let largest = 0;
  for (const values of arrays) {
    for (const value of values) largest = Math.max(largest, Math.abs(value));
  }
  return largest;
}

/** 3.1e37 as '3.1e37', 4.8e6 as '4.8e6', 0.5 as '0.5': two digits, for messages. */
function formatNumber(value: number): string {
  const rounded = Number(value.toPrecision(2));
  const size = Math.abs(rounded);
  if (size !== 0 && (size >= 1e5 || size < 1e-3)) {
    return rounded.toExponential().replace('e+', 'e');
  }
  return String(rounded);
}

/**
 * Runs the exported file (still at its temporary path) and the tf.js head on the same random
 * features. Logits that overflow float32, or that are so large that float32 rounding alone
 * keeps the two from agreeing within VERIFY_TOLERANCE, come from the checkpoint's weights: an
 * InputError naming the checkpoint. Any other disagreement is a bug in the exporter.
 */
async function checkExport(
  snapshot: HeadSnapshot,
  modelPath: string,
  checkpoint: string,
): Promise<VerifyExportResult> {
  await initialiseBackend();
  const verification = await verifyExport({ snapshot, modelPath });
  const { maxAbsDifference, argmaxDisagreements, rows, maxAbsLogit } = verification;
  const weights = formatNumber(largestWeight(snapshot));

  if (verification.nonFiniteLogits > 0) {
    throw new InputError(
      `weights up to ${weights} overflow float32 logits: on ${rows} random feature rows, ` +
        `${verification.nonFiniteLogits} logits of tf.js and ONNX Runtime together are ` +
        'infinite or NaN; the head cannot be exported (such weights usually mean training ' +
        'diverged)',
      checkpoint,
    );
  }
  if (maxAbsDifference <= VERIFY_TOLERANCE && argmaxDisagreements === 0) {
    log.info(verification, 'exported head agrees with tf.js');
    return verification;
  }
  const roundingBound = ROUNDING_TOLERANCE * maxAbsLogit;
  if (roundingBound > VERIFY_TOLERANCE && maxAbsDifference <= roundingBound) {
    throw new InputError(
      `weights up to ${weights} give float32 logits up to ${formatNumber(maxAbsLogit)}, too ` +
        'large to check the export: float32 rounding alone makes tf.js and ONNX Runtime differ ' +
        `by up to ${formatNumber(maxAbsDifference)} (tolerance ${VERIFY_TOLERANCE}); the head ` +
        'cannot be exported (such weights usually mean training diverged)',
      checkpoint,
    );
  }
  throw new Error(
    `the exported head disagrees with tf.js (max logit difference ` +
      `${maxAbsDifference}, ${argmaxDisagreements} of ${rows} predictions differ; tolerance ` +
      `${VERIFY_TOLERANCE}); nothing was written. This is a bug in dyncim's exporter: ` +
      'please report it',
  );
}

/** What `dyncim export` does, callable without commander. */
export async function runExportCommand(
  options: ExportCommandOptions,
): Promise<ExportCommandResult> {
  if (fs.existsSync(options.out) && fs.statSync(options.out).isDirectory()) {
    throw new InputError('is a folder; give the path of the .onnx file to write', options.out);
  }
  if (path.extname(options.out).toLowerCase() !== '.onnx') {
    throw new InputError('--out must name an .onnx file', options.out);
  }
  const snapshot = loadSnapshot(options.checkpoint);
  const metadata = {
    ...parseMetaOptions(options.meta ?? []),
    'dyncim.checkpoint': checkpointMetadata(options.checkpoint),
  };
  const exportOptions = {
    snapshot,
    outputPath: options.out,
    metadata,
    source: options.checkpoint,
  };
  if (options.verify === false) return exportHead(exportOptions);

  // the file replaces --out only once it has been run and agrees with tf.js
  const { result, checked } = await exportHeadChecked(exportOptions, (temporaryPath) =>
    checkExport(snapshot, temporaryPath, options.checkpoint),
  );
  return { ...result, verification: checked };
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
