import { ConfigError } from '../util/errors';
import { SeededRandom } from '../util/rng';
import { deriveSeed } from './seeds';

/**
 * Environmental noise for fusion audio: white noise at a per-sample signal-to-noise ratio. It
 * makes clip quality vary across samples, as the paper's motivation describes, and keeps the
 * audio modality from being near-perfect, so the two modalities are imbalanced and each has
 * errors the other can correct. Recorded per sample, so a sample's audio can be re-created.
 */

export interface AudioNoise {
  /** Signal-to-noise ratio in dB, relative to the clip's mean power. */
  snrDb: number;
  /** Seed of the noise samples. */
  noiseSeed: number;
}

/** Draws one sample's noise from an SNR range, deterministic in (seed, sampleKey). */
export function drawAudioNoise(
  snrDbRange: [number, number],
  seed: number,
  sampleKey: number | string,
): AudioNoise {
  const [low, high] = snrDbRange;
  if (!(Number.isFinite(low) && Number.isFinite(high) && low <= high)) {
    throw new ConfigError(`audio SNR range must be [low, high] in dB, received [${low}, ${high}]`);
  }

  const random = new SeededRandom(deriveSeed(['audio-noise', seed, sampleKey]));
  const snrDb = Math.round(random.uniform(low, high) * 1000) / 1000;
  return { snrDb, noiseSeed: random.integer(0, 2 ** 31 - 1) };
}

/** A copy of `samples` with white noise at `noise.snrDb`, clipped to [-1, 1]. */
export function addWhiteNoise(samples: Float32Array, noise: AudioNoise): Float32Array {
  let power = 0;
  for (let i = 0; i < samples.length; i++) power += samples[i] * samples[i];
  power /= Math.max(samples.length, 1);

  const noiseStd = Math.sqrt(power / Math.pow(10, noise.snrDb / 10));
  const random = new SeededRandom(noise.noiseSeed);
  const noisy = new Float32Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    noisy[i] = Math.max(-1, Math.min(1, samples[i] + noiseStd * random.normal()));
  }
  return noisy;
}

/** 'fsdd:7_jackson_3.wav' plus its noise, as written in dataset.json. */
export function describeNoisySource(file: string, noise?: AudioNoise): string {
  const base = `fsdd:${file}`;
  return noise ? `${base} snrDb=${noise.snrDb} noiseSeed=${noise.noiseSeed}` : base;
}

/** Inverse of describeNoisySource. */
export function parseNoisySource(source: string): { file: string; noise?: AudioNoise } {
  const [head, ...settings] = source.trim().split(/\s+/);
  const file = head.replace(/^fsdd:/, '');
  const values = Object.fromEntries(settings.map((pair) => pair.split('=')));
  if (values.snrDb === undefined) return { file };
  return { file, noise: { snrDb: Number(values.snrDb), noiseSeed: Number(values.noiseSeed) } };
}
