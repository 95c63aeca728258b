import * as path from 'path';
import { Command } from 'commander';
import {
  collectKeyValue,
  definedOnly,
  parseInteger,
  parseIntegerList,
  parseList,
  parseNumber,
  readConfigFile,
} from '../options';

/** `dyncim train` and `dyncim compare`: tf.js only; this process never loads ONNX Runtime. */

interface TrainFlags {
  config?: string;
  method?: string;
  modalities?: string[];
  epochs?: number;
  batchSize?: number;
  lr?: number;
  weightDecay?: number;
  hidden?: number;
  seed?: number;
  backend?: string;
  dyncim?: Record<string, unknown>;
}

function addTrainingOptions(command: Command): Command {
  return command
    .option('--config <file>', 'JSON file with training options; flags override it')
    .option('--modalities <list>', 'modalities to use, comma separated (default: all)', parseList)
    .option('--epochs <n>', 'passes over the training split (default 60)', parseInteger('--epochs'))
    .option('--batch-size <n>', 'samples per step (default 64)', parseInteger('--batch-size'))
    .option('--lr <rate>', 'Adam learning rate (default 0.001)', parseNumber('--lr'))
    .option(
      '--weight-decay <value>',
      'L2 penalty on weights (default 0.0001)',
      parseNumber('--weight-decay'),
    )
    .option('--hidden <width>', 'adapter output width (default 128)', parseInteger('--hidden'))
    .option('--backend <name>', 'tf.js backend: auto, node-gpu, node, wasm, cpu (default auto)')
    .option(
      '--dyncim <key=value>',
      'a DynCIM option, repeatable, e.g. --dyncim volatilityDecay=0.99 (see docs/method.md)',
      collectKeyValue,
    );
}

/** DynCIM options whose value is a list: `--dyncim sampleMetrics=deviation,stability`. */
const LIST_OPTIONS = ['sampleMetrics'];

function listOptions(options: Record<string, unknown>): Record<string, unknown> {
  const result = { ...options };
  for (const key of LIST_OPTIONS) {
    if (typeof result[key] === 'string') result[key] = parseList(result[key] as string);
  }
  return result;
}

function trainConfigFrom(flags: TrainFlags): Record<string, unknown> {
  const fromFile = flags.config ? readConfigFile(flags.config) : {};
  const fromFlags = definedOnly({
    method: flags.method,
    modalities: flags.modalities,
    epochs: flags.epochs,
    batchSize: flags.batchSize,
    learningRate: flags.lr,
    weightDecay: flags.weightDecay,
    hiddenWidth: flags.hidden,
    seed: flags.seed,
    backend: flags.backend,
  });
  const dyncim = { ...(fromFile.dyncim as object), ...listOptions(flags.dyncim ?? {}) };
  return { ...fromFile, ...fromFlags, dyncim };
}

export function registerTrainCommands(program: Command): void {
  addTrainingOptions(
    program
      .command('train')
      .description('train one fusion head on extracted features and write a run folder')
      .requiredOption(
        '--features <file>',
        'feature index written by `dyncim extract` (features.json)',
      )
      .option('--out <dir>', 'run folder (default runs/train-<method>-seed<seed>)')
      .option('--method <name>', 'dyncim, concat or unimodal (default dyncim)')
      .option(
        '--seed <n>',
        'seed for initialisation and shuffling (default 0)',
        parseInteger('--seed'),
      ),
  ).action(async (flags: TrainFlags & { features: string; out?: string }) => {
    const { trainFromIndex } = await import('../../train/train-run');
    const config = trainConfigFrom(flags);
    const runDir =
      flags.out ?? path.join('runs', `train-${config.method ?? 'dyncim'}-seed${config.seed ?? 0}`);
    const { summary } = await trainFromIndex({ featureIndex: flags.features, runDir, config });
    process.stdout.write(`${JSON.stringify({ runDir, test: summary.test }, null, 2)}\n`);
  });

  addTrainingOptions(
    program
      .command('compare')
      .description('train several methods over several seeds on the same features; print a table')
      .requiredOption(
        '--features <file>',
        'feature index written by `dyncim extract` (features.json)',
      )
      .option('--out <dir>', 'folder for the runs and comparison.md', 'runs/compare')
      .option('--methods <list>', 'methods: dyncim, concat, unimodal:<modality>', parseList, [
        'unimodal:audio',
        'unimodal:visual',
        'concat',
        'dyncim',
      ])
      .option('--seeds <list>', 'seeds, comma separated', parseIntegerList('--seeds'), [0, 1, 2]),
  ).action(
    async (
      flags: TrainFlags & { features: string; out: string; methods: string[]; seeds: number[] },
    ) => {
      const { loadFeatureSet } = await import('../../train/feature-set');
      const { compareMethods, comparisonTable } = await import('../../train/compare');
      const features = loadFeatureSet(flags.features);
      const comparison = await compareMethods({
        features,
        outDir: flags.out,
        methods: flags.methods,
        seeds: flags.seeds,
        config: trainConfigFrom(flags),
      });
      process.stdout.write(comparisonTable(comparison));
    },
  );
}
