import * as fs from 'fs';
import * as path from 'path';
import { FusionHead, HeadSnapshot } from '../model/fusion-head';
import { saveSnapshot } from '../model/head-snapshot';
import { DynCimOptions, resolveDynCimOptions } from '../curriculum/curriculum-options';
import { BackendPreference, initialiseBackend } from '../tf/backend';
import { appendLine, writeFileAtomic, writeFolderAtomic, writeJsonAtomic } from '../util/atomic';
import { ConfigError } from '../util/errors';
import { componentLogger } from '../util/logger';
import { createProgress } from '../util/progress';
import {
  FeatureSet,
  SplitName,
  loadFeatureSet,
  selectModalities,
  splitIndices,
} from './feature-set';
import { DynCimMethod } from './dyncim-method';
import { PlainFusionMethod, TrainingMethod } from './methods';
import { EpochMetrics, EvaluationResult, Trainer, evaluateHead } from './trainer';

/**
 * One training job: resolve the config, build head and method, train with per-epoch
 * evaluation, keep the best checkpoint by validation accuracy, evaluate it on the test split,
 * and write everything into a run folder.
 */

export type MethodName = 'dyncim' | 'concat' | 'unimodal';

export interface TrainConfig {
  /** Training method. Default 'dyncim'. */
  method: MethodName;
  /** Modalities to use, in order; default all. 'unimodal' needs exactly one. */
  modalities?: string[];
  epochs: number;
  batchSize: number;
  learningRate: number;
  weightDecay: number;
  hiddenWidth: number;
  seed: number;
  backend: BackendPreference;
  /** DynCIM options (see docs/method.md); unset fields take their defaults. */
  dyncim: Partial<DynCimOptions>;
}

export const DEFAULT_TRAIN_CONFIG: TrainConfig = {
  method: 'dyncim',
  epochs: 60,
  batchSize: 64,
  learningRate: 1e-3,
  weightDecay: 1e-4,
  hiddenWidth: 128,
  seed: 0,
  backend: 'auto',
  dyncim: {},
};

export interface TrainSummary {
  method: MethodName;
  modalities: string[];
  seed: number;
  bestEpoch: number;
  val: EvaluationResult;
  test: EvaluationResult;
  inferenceModalityWeights: number[];
  trainSeconds: number;
  backend: string;
  checkpoint: string;
}

/** Wider adapters than this are a typo, not a model: the weights would not fit in memory. */
const MAX_HIDDEN_WIDTH = 16384;

/** Merges a partial config over the defaults and checks it. */
export function resolveTrainConfig(partial: Partial<TrainConfig>): TrainConfig {
  if (typeof partial !== 'object' || partial === null || Array.isArray(partial)) {
    throw new ConfigError(
      `a training config must be a JSON object; got ${JSON.stringify(partial)}`,
    );
  }
  const known = [...Object.keys(DEFAULT_TRAIN_CONFIG), 'modalities'];
  const unknown = Object.keys(partial).filter((key) => !known.includes(key));
  if (unknown.length > 0) {
    throw new ConfigError(
      `unknown training option(s) ${unknown.join(', ')}; known: ${known.join(', ')}`,
    );
  }

  const config: TrainConfig = { ...DEFAULT_TRAIN_CONFIG, ...partial };
  config.dyncim = { ...partial.dyncim };
  const modalities = config.modalities;
  if (
    modalities !== undefined &&
    (!Array.isArray(modalities) ||
      modalities.length === 0 ||
      modalities.some((name) => typeof name !== 'string' || name.length === 0))
  ) {
    throw new ConfigError(
      `modalities must be a non-empty list of names; got ${JSON.stringify(modalities)}`,
    );
  }

  if (!['dyncim', 'concat', 'unimodal'].includes(config.method)) {
    throw new ConfigError(`method must be dyncim, concat or unimodal; got '${config.method}'`);
  }
  if (config.hiddenWidth > MAX_HIDDEN_WIDTH) {
    throw new ConfigError(
      `hiddenWidth must be at most ${MAX_HIDDEN_WIDTH}; got ${config.hiddenWidth}`,
    );
  }
  for (const key of ['epochs', 'batchSize', 'hiddenWidth'] as const) {
    if (!Number.isInteger(config[key]) || config[key] < 1) {
      throw new ConfigError(`${key} must be a positive integer; got ${config[key]}`);
    }
  }
  if (!(config.learningRate > 0 && Number.isFinite(config.learningRate))) {
    throw new ConfigError(`learningRate must be a finite number > 0; got ${config.learningRate}`);
  }
  if (!(config.weightDecay >= 0 && Number.isFinite(config.weightDecay))) {
    throw new ConfigError(`weightDecay must be a finite number >= 0; got ${config.weightDecay}`);
  }
  if (!Number.isInteger(config.seed)) {
    throw new ConfigError(`seed must be an integer; got ${config.seed}`);
  }
  if (config.method === 'unimodal' && config.modalities?.length !== 1) {
    throw new ConfigError('method unimodal needs exactly one modality (--modalities audio)');
  }
  resolveDynCimOptions(config.dyncim);
  return config;
}

function buildMethod(config: TrainConfig, features: FeatureSet): TrainingMethod {
  if (config.method === 'dyncim') {
    const method = new DynCimMethod({
      numSamples: features.labels.length,
      numModalities: features.modalities.length,
      ...config.dyncim,
    });
    method.trainerOptions = { learningRate: config.learningRate };
    return method;
  }
  return new PlainFusionMethod(config.method);
}

function epochRecord(metrics: EpochMetrics): Record<string, unknown> {
  return {
    epoch: metrics.epoch,
    trainLoss: metrics.trainLoss,
    valLoss: metrics.val.loss,
    valAccuracy: metrics.val.accuracy,
    valMacroF1: metrics.val.macroF1,
    valModalityAccuracy: metrics.val.modalityAccuracy,
    inferenceModalityWeights: metrics.inferenceModalityWeights,
    curriculum: metrics.curriculum,
    seconds: metrics.seconds,
  };
}

/** Trains on an in-memory feature set and writes the run folder. */
export async function trainOnFeatures(options: {
  features: FeatureSet;
  runDir: string;
  config: Partial<TrainConfig>;
}): Promise<{ summary: TrainSummary; best: HeadSnapshot }> {
  const config = resolveTrainConfig(options.config);
  const names = config.modalities ?? options.features.modalities.map((modality) => modality.name);
  const features = selectModalities(options.features, names);
  checkSplits(features);

  // the run is built in a temporary sibling folder and swapped in only when it is complete,
  // so a failed or interrupted run never leaves a mixed folder or destroys an earlier one
  let result: { summary: TrainSummary; best: HeadSnapshot } | undefined;
  const fill = async (workDir: string) => {
    result = await trainInto(workDir, features, config, names);
  };
  await writeFolderAtomic(options.runDir, fill, { marker: 'config.json' });
  result!.summary.checkpoint = path.join(options.runDir, 'checkpoints', 'best.json');
  return result!;
}

/** Every split must hold samples: an empty one means the dataset's splits are not usable. */
function checkSplits(features: FeatureSet): void {
  for (const split of ['train', 'val', 'test'] as const) {
    if (splitIndices(features, split).length === 0) {
      throw new ConfigError(
        `the ${split} split holds no samples; the dataset needs train, val and test samples`,
      );
    }
  }
}

async function trainInto(
  runDir: string,
  features: FeatureSet,
  config: TrainConfig,
  names: string[],
): Promise<{ summary: TrainSummary; best: HeadSnapshot }> {
  const backend = await initialiseBackend(config.backend);
  const log = componentLogger('train', { method: config.method, seed: config.seed });

  fs.mkdirSync(path.join(runDir, 'checkpoints'), { recursive: true });
  // the config as it ran: every default filled in, and the backend that was actually used
  const dyncim = config.method === 'dyncim' ? resolveDynCimOptions(config.dyncim) : undefined;
  writeJsonAtomic(path.join(runDir, 'config.json'), {
    ...config,
    modalities: names,
    dyncim,
    backendUsed: backend.backendName,
  });
  // one line per split: the index lists are long and nobody reads them one number a line
  const split = (name: SplitName) => JSON.stringify(Array.from(splitIndices(features, name)));
  const splitText = `{\n  "train": ${split('train')},\n  "val": ${split('val')},\n  "test": ${split('test')}\n}\n`;
  writeFileAtomic(path.join(runDir, 'split.json'), splitText);
  const metricsFile = path.join(runDir, 'metrics.jsonl');

  const method = buildMethod(config, features);
  const head = FusionHead.create({
    kind: config.method === 'dyncim' ? 'weighted-sum' : method.headKind,
    modalities: features.modalities.map((m) => ({
      name: m.name,
      featureWidth: m.width,
      encoderSha256: m.encoderSha256,
    })),
    classNames: features.classNames,
    hiddenWidth: config.hiddenWidth,
    seed: config.seed,
  });
  const trainer = new Trainer(head, method, features, config);
  const counts = ['train', 'val', 'test'].map((s) => splitIndices(features, s as never).length);
  log.info(
    { modalities: names, train: counts[0], val: counts[1], test: counts[2] },
    'training started',
  );

  let best:
    { epoch: number; accuracy: number; macroF1: number; snapshot: HeadSnapshot } | undefined;
  const progress = createProgress(`train ${config.method}`, config.epochs);
  const started = Date.now();

  await trainer.fit({
    onEpochEnd: (metrics) => {
      appendLine(metricsFile, JSON.stringify(epochRecord(metrics)));
      const better =
        !best ||
        metrics.val.accuracy > best.accuracy ||
        (metrics.val.accuracy === best.accuracy && metrics.val.macroF1 > best.macroF1);
      if (better) {
        best = { epoch: metrics.epoch, ...metrics.val, snapshot: head.snapshot() };
        saveSnapshot(path.join(runDir, 'checkpoints', 'best.json'), best.snapshot, {
          epoch: metrics.epoch,
          method: config.method,
          methodState: method.state?.(),
        });
      }
      saveSnapshot(path.join(runDir, 'checkpoints', 'last.json'), head.snapshot(), {
        epoch: metrics.epoch,
        method: config.method,
        methodState: method.state?.(),
      });
      progress.tick({ epoch: metrics.epoch, valAccuracy: metrics.val.accuracy });
      log.debug(epochRecord(metrics), 'epoch done');
    },
  });
  progress.stop();
  const trainSeconds = (Date.now() - started) / 1000;
  trainer.dispose();
  head.dispose();

  const bestHead = FusionHead.fromSnapshot(best!.snapshot);
  const val = evaluateHead(bestHead, features, splitIndices(features, 'val'));
  const test = evaluateHead(bestHead, features, splitIndices(features, 'test'));
  bestHead.dispose();

  const summary: TrainSummary = {
    method: config.method,
    modalities: names,
    seed: config.seed,
    bestEpoch: best!.epoch,
    val,
    test,
    inferenceModalityWeights: Array.from(best!.snapshot.inferenceModalityWeights),
    trainSeconds,
    backend: backend.backendName,
    checkpoint: path.join('checkpoints', 'best.json'),
  };
  writeJsonAtomic(path.join(runDir, 'summary.json'), summary);
  log.info(
    {
      bestEpoch: summary.bestEpoch,
      testAccuracy: round(test.accuracy),
      testMacroF1: round(test.macroF1),
      modalityAccuracy: test.modalityAccuracy,
      seconds: round(trainSeconds),
    },
    'training finished',
  );
  return { summary, best: best!.snapshot };
}

function round(value: number): number {
  return Math.round(value * 10000) / 10000;
}

/** Trains from a feature index file (written by `dyncim extract`). */
export async function trainFromIndex(options: {
  featureIndex: string;
  runDir: string;
  config: Partial<TrainConfig>;
}): Promise<{ summary: TrainSummary; best: HeadSnapshot }> {
  const features = loadFeatureSet(options.featureIndex);
  return trainOnFeatures({ features, runDir: options.runDir, config: options.config });
}
