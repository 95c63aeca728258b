import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { Command } from 'commander';
import { ConfigError, StepError } from '../../util/errors';
import { componentLogger } from '../../util/logger';
import { writeFolderAtomic, writeJsonAtomic } from '../../util/atomic';
import { parseInteger, parseIntegerList, parseList } from '../options';
import { addDegradationOptions } from './dataset';

/**
 * `dyncim run`: the main job, end to end. Build (or reuse) the dataset, extract features with
 * the frozen encoders, train the unimodal baselines, concatenation and DynCIM, export the DynCIM
 * head to ONNX, check the export on the test split and predict one raw sample through it.
 * Extraction, training and ONNX inference run as separate child processes.
 */

interface RunFlags {
  source: 'synth' | 'fsdd';
  fsddDir: string;
  out?: string;
  models: string;
  cache: string;
  seeds: number[];
  methods: string[];
  epochs?: number;
  device: string;
  backend: string;
  datasetSeed: number;
  samplesPerClass?: number;
  imageCorruption?: number;
  audioSnrDb?: [number, number] | null;
}

const log = componentLogger('run');

/** Runs this CLI again as a child process; its stdout is returned, stderr passes through. */
function runStep(step: string, args: string[]): string {
  log.info({ step, command: `dyncim ${args.join(' ')}` }, 'step started');
  const started = Date.now();
  const child = spawnSync(process.execPath, [process.argv[1], ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });

  if (child.status !== 0) {
    throw new StepError(
      `dyncim run stopped: step '${step}' failed (exit code ${child.status}); ` +
        'its own error is logged above',
    );
  }
  log.info({ step, seconds: (Date.now() - started) / 1000 }, 'step finished');
  return child.stdout;
}

async function ensureDataset(flags: RunFlags): Promise<string> {
  const { buildDataset, datasetBuildSettings } = await import('../../data/dataset-builder');
  const options = {
    source: flags.source,
    fsddDir: flags.fsddDir,
    outDir: path.join(flags.cache, 'datasets', `${flags.source}-seed${flags.datasetSeed}`),
    seed: flags.datasetSeed,
    samplesPerClass: flags.samplesPerClass,
    imageCorruption: flags.imageCorruption,
    audioSnrDb: (flags.audioSnrDb as unknown) === 'auto' ? undefined : flags.audioSnrDb,
    cacheDir: path.join(flags.cache, 'espeak-ng'),
  };

  const manifestFile = path.join(options.outDir, 'dataset.json');
  if (fs.existsSync(manifestFile)) {
    const { loadDataset } = await import('../../data/manifest');
    const built = loadDataset(options.outDir).manifest.build;
    if (JSON.stringify(built) === JSON.stringify(datasetBuildSettings(options))) {
      log.info({ datasetDir: options.outDir }, 'dataset found in cache with the same settings');
      return options.outDir;
    }
    log.info(
      { datasetDir: options.outDir },
      'cached dataset was built with other settings; rebuilding',
    );
  }

  const result = await buildDataset(options);
  log.info(
    { datasetDir: options.outDir, samples: result.samples, splits: result.splits },
    'dataset built',
  );
  return options.outDir;
}

function checkEncoders(models: string): void {
  for (const modality of ['audio', 'visual']) {
    const file = path.join(models, `${modality}-resnet18.onnx`);
    if (!fs.existsSync(file)) {
      throw new ConfigError(
        `encoder ${file} is missing: run \`dyncim encoders build\` (needs python3-torch) ` +
          'or `bash scripts/setup.sh`, which builds both encoders',
      );
    }
  }
}

function trainingFlags(flags: RunFlags): string[] {
  const args = ['--backend', flags.backend];
  if (flags.epochs !== undefined) args.push('--epochs', String(flags.epochs));
  return args;
}

interface Comparison {
  rows: Array<{ method: string }>;
  runs: Array<{ spec: string; seed: number; runDir: string; test: { accuracy: number } }>;
}

async function writeExampleInputs(datasetDir: string, runDir: string) {
  const { exportSampleInputs } = await import('../../data/sample-inputs');
  return exportSampleInputs({ datasetDir, split: 'test', outDir: path.join(runDir, 'examples') });
}

/** The extract step: features of every modality, cached beside other datasets' features. */
function extractStep(flags: RunFlags, datasetDir: string): string {
  const featuresDir = path.join(flags.cache, 'features', path.basename(datasetDir));
  const args = ['--dataset', datasetDir, '--models', flags.models, '--cache', featuresDir];
  runStep('extract', ['extract', ...args, '--device', flags.device]);
  return path.join(featuresDir, 'features.json');
}

/** Trains every method into `<workDir>/compare`; returns the printed table and the results. */
function compareStep(flags: RunFlags, featureIndex: string, workDir: string) {
  const compareDir = path.join(workDir, 'compare');
  const table = runStep('compare', [
    'compare',
    ...['--features', featureIndex, '--out', compareDir],
    ...['--methods', flags.methods.join(','), '--seeds', flags.seeds.join(',')],
    ...trainingFlags(flags),
  ]);
  const comparison: Comparison = JSON.parse(
    fs.readFileSync(path.join(compareDir, 'comparison.json'), 'utf8'),
  );
  return { table, comparison, compareDir };
}

export async function runMainJob(flags: RunFlags): Promise<void> {
  const runDir = path.resolve(flags.out ?? path.join('runs', `main-${flags.source}`));
  log.info({ runDir, source: flags.source }, 'main job started');

  checkEncoders(flags.models);
  const datasetDir = await ensureDataset(flags);
  const featureIndex = extractStep(flags, datasetDir);

  // the run folder is built aside and swapped in at the end: a failed step leaves an earlier
  // run folder as it was, and no half-made one
  let report: { table: string; summary: Record<string, any> } | undefined;
  await writeFolderAtomic(
    runDir,
    async (workDir) => {
      const { table, comparison, compareDir } = compareStep(flags, featureIndex, workDir);
      const headRun =
        comparison.runs.find((run) => run.spec === 'dyncim') ??
        comparison.runs[comparison.runs.length - 1];
      const checkpoint = path.join(compareDir, headRun.runDir, 'checkpoints', 'best.json');
      const workHead = path.join(workDir, 'head.onnx');
      runStep('export', ['export', '--checkpoint', checkpoint, '--out', workHead]);

      const device = ['--device', flags.device];
      const onTest = ['--features', featureIndex, '--split', 'test'];
      const exported = JSON.parse(
        runStep('check export', ['predict', '--head', workHead, ...onTest, ...device]),
      );
      const examples = await writeExampleInputs(datasetDir, workDir);
      const inputs = ['--wav', examples.wav, '--image', examples.image, '--models', flags.models];
      const prediction = JSON.parse(
        runStep('predict raw', ['predict', '--head', workHead, ...inputs, ...device]),
      );

      const final = (file: string) => path.join(runDir, path.relative(workDir, file));
      const summary = {
        runDir,
        datasetDir,
        featureIndex,
        comparison: final(path.join(compareDir, 'comparison.md')),
        exportedHead: {
          path: final(workHead),
          from: final(path.join(compareDir, headRun.runDir)),
          testAccuracyOnnx: exported.accuracy,
          testAccuracyTfjs: headRun.test.accuracy,
        },
        example: {
          ...examples,
          wav: final(examples.wav),
          image: final(examples.image),
          predicted: prediction.predicted,
          modalityPredictions: prediction.modalityPredictions,
        },
      };
      writeJsonAtomic(path.join(workDir, 'summary.json'), summary);
      report = { table, summary };
    },
    { marker: 'summary.json' },
  );

  printReport(report!.table, report!.summary);
}

function printReport(table: string, summary: Record<string, any>): void {
  const percent = (value: number) => `${(100 * value).toFixed(2)}%`;
  const lines = [
    '',
    `Test results (${summary.datasetDir}):`,
    table.trimEnd(),
    '',
    `Exported DynCIM head: ${summary.exportedHead.path}`,
    `  ONNX Runtime on the test split: accuracy ` +
      `${percent(summary.exportedHead.testAccuracyOnnx)} ` +
      `(tf.js: ${percent(summary.exportedHead.testAccuracyTfjs)})`,
    `Raw prediction through encoders + exported head: ${summary.example.wav} + ` +
      summary.example.image,
    `  predicted ${summary.example.predicted} (label ${summary.example.label}); ` +
      `per modality: ${JSON.stringify(summary.example.modalityPredictions)}`,
    `Run folder: ${summary.runDir}`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

export function registerRunCommand(program: Command): void {
  const command = program
    .command('run')
    .description('the main job: dataset, features, training (baselines + DynCIM), export, predict')
    .option(
      '--source <name>',
      'synth (espeak-ng, embedded default) or fsdd (real recordings)',
      'synth',
    )
    .option(
      '--fsdd-dir <dir>',
      'FSDD recordings folder, for --source fsdd',
      '../shared/data/fsdd/recordings',
    )
    .option('--out <dir>', 'run folder (default runs/main-<source>)')
    .option('--models <dir>', 'folder with the ONNX encoders', 'models')
    .option('--cache <dir>', 'cache for datasets, synthesized speech and features', '.cache')
    .option('--seeds <list>', 'training seeds', parseIntegerList('--seeds'), [0])
    .option('--methods <list>', 'methods to compare', parseList, [
      'unimodal:audio',
      'unimodal:visual',
      'concat',
      'dyncim',
    ])
    .option('--epochs <n>', 'training epochs (default 60)', parseInteger('--epochs'))
    .option('--device <name>', 'ONNX Runtime device: auto, cpu or cuda', 'auto')
    .option('--backend <name>', 'tf.js backend: auto, node-gpu, node, wasm, cpu', 'auto')
    .option(
      '--dataset-seed <n>',
      'seed of the dataset (pairs, splits, noise)',
      parseInteger('--dataset-seed'),
      0,
    )
    .option(
      '--samples-per-class <n>',
      'synth only: clips per digit (default 300)',
      parseInteger('--samples-per-class'),
    );
  addDegradationOptions(command).action(async (flags: RunFlags) => runMainJob(flags));
}
