import * as fs from 'fs';
import * as path from 'path';
import { Command, Option } from 'commander';
import { InputError } from '../../util/errors';
import { parseInteger } from '../options';

/**
 * `dyncim extract`: runs every modality of a dataset through its frozen ONNX encoder and
 * writes the feature cache plus `features.json`, the index `dyncim train --features` reads.
 * ONNX Runtime loads only when the command runs, never beside tf.js.
 */

interface ExtractFlags {
  dataset: string;
  models: string;
  cache?: string;
  device: 'auto' | 'cpu' | 'cuda';
  batchSize: number;
}

interface ModalitySummary {
  name: string;
  shape: [number, number];
  cachePath: string;
  cacheHit: boolean;
  encoderSha256: string;
}

/** The encoder the setup command builds for a modality: `<models>/<modality>-resnet18.onnx`. */
export function encoderPathFor(modelsDir: string, modality: string): string {
  return path.join(modelsDir, `${modality}-resnet18.onnx`);
}

function checkEncodersExist(modelsDir: string, modalities: string[]): void {
  for (const modality of modalities) {
    const encoderPath = encoderPathFor(modelsDir, modality);
    if (fs.existsSync(encoderPath)) continue;
    throw new InputError(
      `no encoder for modality '${modality}': build the encoders first ` +
        '(/usr/bin/python3 scripts/export_encoders.py, run by the setup command) ' +
        'or point --models at a folder holding it',
      encoderPath,
    );
  }
}

async function writeIndex(flags: ExtractFlags, cacheDir: string, summaries: ModalitySummary[]) {
  const { writeFeatureIndex, FEATURE_INDEX_FILE } = await import('../../train/feature-set');
  const indexPath = path.join(cacheDir, FEATURE_INDEX_FILE);

  writeFeatureIndex(indexPath, {
    format: 'dyncim-features/1',
    datasetDir: path.relative(cacheDir, path.resolve(flags.dataset)) || '.',
    modalities: summaries.map((summary) => ({
      name: summary.name,
      file: path.relative(cacheDir, summary.cachePath),
      shape: summary.shape,
      encoderSha256: summary.encoderSha256,
    })),
  });
  return indexPath;
}

async function runExtract(flags: ExtractFlags): Promise<void> {
  const { extractFeatures, listDatasetModalities } = await import('../../encoders/extract');
  const cacheDir = path.resolve(flags.cache ?? path.join(flags.dataset, 'features'));
  const modalities = listDatasetModalities(flags.dataset).map((entry) => entry.name);
  checkEncodersExist(flags.models, modalities);

  const summaries: ModalitySummary[] = [];
  for (const modality of modalities) {
    const result = await extractFeatures({
      datasetDir: flags.dataset,
      modality,
      encoderPath: encoderPathFor(flags.models, modality),
      cacheDir,
      batchSize: flags.batchSize,
      device: flags.device,
    });
    const { shape, cachePath, cacheHit, encoderSha256 } = result;
    summaries.push({ name: modality, shape, cachePath, cacheHit, encoderSha256 });
  }

  const featureIndex = await writeIndex(flags, cacheDir, summaries);
  process.stdout.write(`${JSON.stringify({ featureIndex, modalities: summaries }, null, 2)}\n`);
}

export function registerExtractCommands(program: Command): void {
  program
    .command('extract')
    .description('encode every modality of a dataset with its frozen ONNX encoder (cached)')
    .requiredOption('--dataset <dir>', 'dataset folder written by `dyncim dataset build`')
    .option('--models <dir>', 'folder with <modality>-resnet18.onnx encoders', 'models')
    .option('--cache <dir>', 'feature cache folder (default <dataset>/features)')
    .addOption(
      new Option('--device <name>', 'where ONNX Runtime runs')
        .choices(['auto', 'cpu', 'cuda'])
        .default('auto'),
    )
    .option('--batch-size <n>', 'samples per encoder call', parseInteger('--batch-size'), 64)
    .action(runExtract);
}
