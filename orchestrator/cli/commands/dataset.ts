import * as path from 'path';
import { Command } from 'commander';
import { ConfigError } from '../../util/errors';
import { parseInteger, parseNumber } from '../options';

/**
 * `dyncim dataset build` and `dyncim dataset pretrain-arrays`: the paired audio-visual dataset
 * and the encoders' pretraining arrays. Both print a JSON summary on stdout; progress and
 * choices go to the log on stderr.
 */

interface BuildFlags {
  source: string;
  fsddDir: string;
  out?: string;
  seed: number;
  samplesPerClass: number;
  imageCorruption: number;
  audioSnrDb?: [number, number] | null;
  cache: string;
  concurrency: number;
  speakerSeed: number;
}

interface PretrainFlags {
  out: string;
  seed: number;
  audioPerClass: number;
  imagesPerClass?: number;
  heldout: number;
  modalities: string;
  cache: string;
  concurrency: number;
  speakerSeed: number;
}

function parseSource(value: string): 'synth' | 'fsdd' {
  if (value !== 'synth' && value !== 'fsdd') {
    throw new ConfigError(`--source must be synth or fsdd; got '${value}'`);
  }
  return value;
}

function parseModalities(value: string): Array<'audio' | 'visual'> {
  const names = value.split(',').map((name) => name.trim());
  const unknown = names.filter((name) => name !== 'audio' && name !== 'visual');
  if (unknown.length > 0 || names.length === 0) {
    throw new ConfigError(`--modalities takes audio, visual or both; got '${value}'`);
  }
  return names as Array<'audio' | 'visual'>;
}

/** 'low,high' in dB, or 'none'. */
export function parseSnrRange(value: string): [number, number] | null | undefined {
  if (value === 'auto') return undefined;
  if (value === 'none') return null;
  const parts = value.split(',').map(Number);
  if (parts.length !== 2 || parts.some((part) => !Number.isFinite(part)) || parts[0] > parts[1]) {
    throw new ConfigError(`--audio-snr-db must be "low,high" in dB or "none"; got '${value}'`);
  }
  return [parts[0], parts[1]];
}

/**
 * How fusion inputs are degraded: shared by `dataset build` and `run`, which both build
 * datasets, so the two always offer the same choices.
 */
export function addDegradationOptions(command: Command): Command {
  return command
    .option(
      '--image-corruption <strength>',
      'largest per-sample image degradation in [0, 1] (0: clean images)',
      parseNumber('--image-corruption'),
      1,
    )
    .option(
      '--audio-snr-db <low,high>',
      'per-sample SNR range in dB of noise over fusion audio, or "none"; ' +
        'auto: synth -15,0, fsdd -10,5',
      parseSnrRange,
      'auto' as unknown as [number, number],
    );
}

async function runBuild(flags: BuildFlags): Promise<void> {
  const { buildDataset } = await import('../../data/dataset-builder');
  const source = parseSource(flags.source);

  const result = await buildDataset({
    source,
    fsddDir: flags.fsddDir,
    outDir: flags.out ?? path.join('datasets', source),
    seed: flags.seed,
    samplesPerClass: flags.samplesPerClass,
    imageCorruption: flags.imageCorruption,
    audioSnrDb: (flags.audioSnrDb as unknown) === 'auto' ? undefined : flags.audioSnrDb,
    cacheDir: flags.cache,
    concurrency: flags.concurrency,
    speakerSeed: flags.speakerSeed,
  });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

async function runPretrainArrays(flags: PretrainFlags): Promise<void> {
  const { buildPretrainArrays } = await import('../../data/dataset-builder');

  const result = await buildPretrainArrays({
    outDir: flags.out,
    seed: flags.seed,
    audioClipsPerClass: flags.audioPerClass,
    imagesPerClass: flags.imagesPerClass,
    heldoutFraction: flags.heldout,
    modalities: parseModalities(flags.modalities),
    cacheDir: flags.cache,
    concurrency: flags.concurrency,
    speakerSeed: flags.speakerSeed,
  });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

const CACHE_HELP = 'cache of synthesized espeak-ng clips (reruns skip espeak-ng)';
const SPEAKER_SEED_HELP =
  'speaker population and its pretrain/train/val/test sets; keep it equal for the ' +
  'pretraining arrays and every dataset, or pretraining speakers reach the test split';

export function registerDatasetCommands(program: Command): void {
  const dataset = program
    .command('dataset')
    .description('build paired audio-visual datasets and encoder pretraining arrays');

  const build = dataset
    .command('build')
    .description('build a dataset folder: dataset.json, audio.npy, visual.npy, labels.npy')
    .option('--source <kind>', 'synth (espeak-ng speech) or fsdd (real recordings)', 'synth')
    .option(
      '--fsdd-dir <dir>',
      'FSDD recordings ({digit}_{speaker}_{index}.wav), for --source fsdd',
      '../shared/data/fsdd/recordings',
    )
    .option(
      '--out <dir>',
      'dataset folder to write, replaced atomically (default: datasets/<source>)',
    )
    .option('--seed <n>', 'pairing, order, noise and image corruption', parseInteger('--seed'), 0)
    .option(
      '--samples-per-class <n>',
      'synth only: clips per digit, divided 60/20/20 into train/val/test',
      parseInteger('--samples-per-class'),
      300,
    );
  addDegradationOptions(build)
    .option('--cache <dir>', CACHE_HELP, path.join('.cache', 'espeak-ng'))
    .option('--concurrency <n>', 'espeak-ng processes at a time', parseInteger('--concurrency'), 2)
    .option('--speaker-seed <n>', SPEAKER_SEED_HELP, parseInteger('--speaker-seed'), 0)
    .action(async (flags: BuildFlags) => runBuild(flags));

  dataset
    .command('pretrain-arrays')
    .description('write <out>/{audio,visual}/{inputs.npy,labels.npy,split.json} for the encoders')
    .option('--out <dir>', 'folder to write, replaced atomically', path.join('.cache', 'pretrain'))
    .option(
      '--seed <n>',
      'utterances, noise, row order, held-out choice',
      parseInteger('--seed'),
      0,
    )
    .option(
      '--audio-per-class <n>',
      'clips per digit from the pretraining speakers',
      parseInteger('--audio-per-class'),
      300,
    )
    .option(
      '--images-per-class <n>',
      'MNIST pretraining images per digit (default: the whole pretraining pool, ~400)',
      parseInteger('--images-per-class'),
    )
    .option('--heldout <fraction>', 'share held out for accuracy', parseNumber('--heldout'), 0.1)
    .option('--modalities <list>', 'arrays to build: audio, visual or both', 'audio,visual')
    .option('--cache <dir>', CACHE_HELP, path.join('.cache', 'espeak-ng'))
    .option('--concurrency <n>', 'espeak-ng processes at a time', parseInteger('--concurrency'), 2)
    .option('--speaker-seed <n>', SPEAKER_SEED_HELP, parseInteger('--speaker-seed'), 0)
    .action(async (flags: PretrainFlags) => runPretrainArrays(flags));
}
