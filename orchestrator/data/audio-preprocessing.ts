import { InputError, ShapeError } from '../util/errors';
import { sampleRateProblem } from './wav';

/**
 * The only copy of audio preprocessing. Every audio input the encoders ever see (pretraining
 * arrays, dataset arrays, inference) goes through `preprocessAudio`, and `AUDIO_PREPROCESSING`
 * is recorded next to every array so a changed pipeline is detected as stale.
 *
 * Pipeline: resample to 8 kHz (windowed sinc) -> trim near-silence at both ends -> centre-pad
 * or centre-crop to 1 s -> 64 Hann-windowed 256-point FFT frames -> 64 HTK-mel bands ->
 * natural log with an 80 dB floor -> per-clip standardisation.
 */
export const AUDIO_PREPROCESSING = {
  version: 'audio-logmel-v1',
  /** Every clip is resampled to this rate (Hz). */
  sampleRate: 8000,
  /** Clip length after trimming and padding: 1 s. */
  clipSamples: 8000,
  nFft: 256,
  /** 8000 / 64: one frame per 125-sample slot, the window centred on its slot. */
  hopLength: 125,
  window: 'hann (periodic)',
  melBands: 64,
  frames: 64,
  melScale: 'htk',
  /** Triangles peak at 1 (no area normalisation), so they sum to 1 between outer centres. */
  melNormalisation: 'none',
  fMinHz: 0,
  fMaxHz: 4000,
  /** Leading/trailing 10 ms blocks quieter than the loudest block by this much are cut. */
  trimTopDb: 30,
  trimBlockSamples: 80,
  /** log(mel + eps), then values more than 80 dB below the clip's peak are raised to it. */
  logEpsilon: 1e-10,
  logFloorDb: 80,
  normalisation: 'per-clip standardisation: zero mean, unit variance over all 64x64 values',
  resampler: 'Blackman-windowed sinc, 32 zero crossings, cutoff 0.9 x the lower Nyquist',
  /** Output [channel, mel band, frame]. */
  outputShape: [1, 64, 64] as readonly number[],
} as const;

/** Options of `preprocessAudio`. */
export interface PreprocessAudioOptions {
  /** Names the clip (file name, synthesis parameters) in errors. Default: none. */
  source?: string;
}

/** Options of `melFilterbank`. */
export interface MelFilterbankOptions {
  /** Default AUDIO_PREPROCESSING.melBands. */
  bands?: number;
  /** Default AUDIO_PREPROCESSING.nFft. */
  nFft?: number;
  /** Default AUDIO_PREPROCESSING.sampleRate. */
  sampleRate?: number;
  /** Default AUDIO_PREPROCESSING.fMinHz. */
  fMinHz?: number;
  /** Default AUDIO_PREPROCESSING.fMaxHz. */
  fMaxHz?: number;
}

const RESAMPLER_ZERO_CROSSINGS = 32;
const RESAMPLER_ROLLOFF = 0.9;
const RESAMPLER_TABLE_STEPS = 512;

/** HTK mel scale: mel = 2595 log10(1 + f / 700). */
export function hzToMel(hz: number): number {
  return 2595 * Math.log10(1 + hz / 700);
}

/** Inverse of `hzToMel`. */
export function melToHz(mel: number): number {
  return 700 * (Math.pow(10, mel / 2595) - 1);
}

const twiddleTables = new Map<number, { cos: Float64Array; sin: Float64Array }>();

/** cos and sin of -2 pi k / size for k < size / 2, computed once per FFT size. */
function twiddlesFor(size: number): { cos: Float64Array; sin: Float64Array } {
  let table = twiddleTables.get(size);
  if (!table) {
    const half = size / 2;
    table = { cos: new Float64Array(half), sin: new Float64Array(half) };
    for (let k = 0; k < half; k++) {
      table.cos[k] = Math.cos((-2 * Math.PI * k) / size);
      table.sin[k] = Math.sin((-2 * Math.PI * k) / size);
    }
    twiddleTables.set(size, table);
  }
  return table;
}

/**
 * Iterative radix-2 FFT, in place: on return `real` and `imag` hold the spectrum
 * X[k] = sum_n x[n] exp(-2 pi i k n / N). N must be a power of two.
 */
export function fftInPlace(real: Float64Array, imag: Float64Array): void {
  const size = real.length;
  if (imag.length !== size || size === 0 || (size & (size - 1)) !== 0) {
    throw new ShapeError(
      `fft needs equal power-of-two lengths, received real ${size} and imag ${imag.length}`,
    );
  }

  reorderBitReversed(real, imag);

  // a table rather than Math.cos in the loop: see kernelSum on global lookups
  const twiddles = twiddlesFor(size);
  for (let span = 2; span <= size; span *= 2) {
    const half = span / 2;
    const stride = size / span;
    for (let start = 0; start < size; start += span) {
      for (let k = 0; k < half; k++) {
        const twiddleRe = twiddles.cos[k * stride];
        const twiddleIm = twiddles.sin[k * stride];
        const even = start + k;
        const odd = even + half;
        const oddRe = real[odd] * twiddleRe - imag[odd] * twiddleIm;
        const oddIm = real[odd] * twiddleIm + imag[odd] * twiddleRe;
        real[odd] = real[even] - oddRe;
        imag[odd] = imag[even] - oddIm;
        real[even] += oddRe;
        imag[even] += oddIm;
      }
    }
  }
}

function reorderBitReversed(real: Float64Array, imag: Float64Array): void {
  const size = real.length;
  let reversed = 0;

  for (let i = 0; i < size - 1; i++) {
    if (i < reversed) {
      [real[i], real[reversed]] = [real[reversed], real[i]];
      [imag[i], imag[reversed]] = [imag[reversed], imag[i]];
    }
    let bit = size >> 1;
    while (reversed & bit) {
      reversed ^= bit;
      bit >>= 1;
    }
    reversed |= bit;
  }
}

/** Periodic Hann window, as STFTs use it: w[n] = 0.5 - 0.5 cos(2 pi n / N). */
export function hannWindow(length: number): Float64Array {
  const window = new Float64Array(length);
  for (let n = 0; n < length; n++) window[n] = 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / length);
  return window;
}

/**
 * Triangular HTK-mel filters over the FFT bins, row-major [bands, nFft / 2 + 1]. Band edges
 * are equally spaced in mel; each triangle rises linearly in Hz from its left neighbour's
 * centre to 1 at its own centre and falls to 0 at its right neighbour's centre.
 */
export function melFilterbank(options: MelFilterbankOptions = {}): Float32Array {
  const bands = options.bands ?? AUDIO_PREPROCESSING.melBands;
  const nFft = options.nFft ?? AUDIO_PREPROCESSING.nFft;
  const sampleRate = options.sampleRate ?? AUDIO_PREPROCESSING.sampleRate;
  const fMin = options.fMinHz ?? AUDIO_PREPROCESSING.fMinHz;
  const fMax = options.fMaxHz ?? AUDIO_PREPROCESSING.fMaxHz;
  const bins = nFft / 2 + 1;

  const melLow = hzToMel(fMin);
  const melStep = (hzToMel(fMax) - melLow) / (bands + 1);
  const edgesHz = Array.from({ length: bands + 2 }, (_, i) => melToHz(melLow + i * melStep));

  const filters = new Float32Array(bands * bins);
  for (let band = 0; band < bands; band++) {
    const [left, centre, right] = edgesHz.slice(band, band + 3);
    for (let bin = 0; bin < bins; bin++) {
      const hz = (bin * sampleRate) / nFft;
      const rising = (hz - left) / (centre - left);
      const falling = (right - hz) / (right - centre);
      filters[band * bins + bin] = Math.max(0, Math.min(rising, falling));
    }
  }

  return filters;
}

/** Blackman-windowed sinc sampled along |u| in zero-crossing units, 0 <= u <= crossings. */
function buildSincTable(): Float64Array {
  const length = RESAMPLER_ZERO_CROSSINGS * RESAMPLER_TABLE_STEPS + 2;
  const table = new Float64Array(length);

  for (let i = 0; i < length; i++) {
    const u = i / RESAMPLER_TABLE_STEPS;
    const v = Math.min(1, u / RESAMPLER_ZERO_CROSSINGS);
    const blackman = 0.42 + 0.5 * Math.cos(Math.PI * v) + 0.08 * Math.cos(2 * Math.PI * v);
    const sinc = u === 0 ? 1 : Math.sin(Math.PI * u) / (Math.PI * u);
    table[i] = sinc * blackman;
  }

  return table;
}

const SINC_TABLE = buildSincTable();

/**
 * sum_k samples[k] * sinc-kernel(crossingsPerSample * (time - k)) for k in [first, last], the
 * kernel read from the table with linear interpolation. The hot loop of resampling: it avoids
 * global lookups such as Math.*, which cost ~100 ns each where modules run in a vm context
 * (jest), and leans on |u| <= RESAMPLER_ZERO_CROSSINGS, which the caller's bounds guarantee.
 */
function kernelSum(
  samples: Float32Array,
  first: number,
  last: number,
  time: number,
  crossingsPerSample: number,
): number {
  const table = SINC_TABLE;
  let sum = 0;

  for (let k = first; k <= last; k++) {
    const u = crossingsPerSample * (time - k);
    const position = (u < 0 ? -u : u) * RESAMPLER_TABLE_STEPS;
    const index = position | 0;
    const weight = table[index] + (position - index) * (table[index + 1] - table[index]);
    sum += samples[k] * weight;
  }

  return sum;
}

/**
 * Band-limited resampling with a windowed-sinc kernel. When the rate drops, the kernel's
 * cutoff sits at 0.9 x the new Nyquist frequency so that content above it is removed before it
 * can alias (espeak-ng writes 22050 Hz; an 8 kHz target keeps only 0..4 kHz).
 */
export function resample(samples: Float32Array, fromRate: number, toRate: number): Float32Array {
  if (fromRate === toRate) return samples.slice();

  const step = fromRate / toRate;
  // cutoff in cycles per input sample; u = 2 * cutoff * distance counts zero crossings
  const cutoff = 0.5 * Math.min(1, toRate / fromRate) * RESAMPLER_ROLLOFF;
  const reach = RESAMPLER_ZERO_CROSSINGS / (2 * cutoff);
  const output = new Float32Array(Math.round((samples.length * toRate) / fromRate));

  for (let n = 0; n < output.length; n++) {
    const time = n * step;
    const first = Math.max(0, Math.ceil(time - reach));
    const last = Math.min(samples.length - 1, Math.floor(time + reach));
    output[n] = 2 * cutoff * kernelSum(samples, first, last, time, 2 * cutoff);
  }

  return output;
}

function maximumOf(values: Float64Array): number {
  let maximum = -Infinity;
  for (const value of values) if (value > maximum) maximum = value;
  return maximum;
}

/**
 * Cuts leading and trailing blocks whose energy is more than `trimTopDb` below the loudest
 * block, so that a clip's speech starts at the same place whatever silence or padding the
 * recording or synthesizer put around it. A clip with no energy is returned whole.
 */
export function trimSilence(samples: Float32Array): Float32Array {
  const blockLength = AUDIO_PREPROCESSING.trimBlockSamples;
  const blockCount = Math.ceil(samples.length / blockLength);
  const energies = new Float64Array(blockCount);

  for (let block = 0; block < blockCount; block++) {
    const end = Math.min(samples.length, (block + 1) * blockLength);
    let energy = 0;
    for (let i = block * blockLength; i < end; i++) energy += samples[i] * samples[i];
    energies[block] = energy / (end - block * blockLength);
  }

  const loudest = maximumOf(energies);
  if (loudest === 0) return samples;

  const threshold = loudest * Math.pow(10, -AUDIO_PREPROCESSING.trimTopDb / 10);
  const firstLoud = energies.findIndex((energy) => energy >= threshold);
  let lastLoud = blockCount - 1;
  while (energies[lastLoud] < threshold) lastLoud--;

  const end = Math.min(samples.length, (lastLoud + 1) * blockLength);
  return samples.subarray(firstLoud * blockLength, end);
}

/** Centre-pads with zeros, or centre-crops, to exactly `length` samples. */
export function centreToLength(samples: Float32Array, length: number): Float32Array {
  const output = new Float32Array(length);

  if (samples.length <= length) {
    output.set(samples, Math.floor((length - samples.length) / 2));
  } else {
    const start = Math.floor((samples.length - length) / 2);
    output.set(samples.subarray(start, start + length));
  }

  return output;
}

const HANN = hannWindow(AUDIO_PREPROCESSING.nFft);
const MEL_FILTERS = melFilterbank();

/** Power spectrum |X[k]|^2, k = 0..nFft/2, of the Hann-windowed frame starting at `start`. */
function framePowerSpectrum(clip: Float32Array, start: number): Float64Array {
  const nFft = AUDIO_PREPROCESSING.nFft;
  const real = new Float64Array(nFft);
  const imag = new Float64Array(nFft);

  for (let n = 0; n < nFft; n++) {
    const index = start + n;
    // samples outside the clip are zero: the first and last windows overhang it
    if (index >= 0 && index < clip.length) real[n] = clip[index] * HANN[n];
  }

  fftInPlace(real, imag);

  const power = new Float64Array(nFft / 2 + 1);
  for (let k = 0; k < power.length; k++) power[k] = real[k] * real[k] + imag[k] * imag[k];
  return power;
}

/** Mel power [bands, frames] of a 1 s clip at 8 kHz. */
function melSpectrogram(clip: Float32Array): Float64Array {
  const { nFft, hopLength, melBands, frames } = AUDIO_PREPROCESSING;
  const bins = nFft / 2 + 1;
  const mel = new Float64Array(melBands * frames);
  // frame t is centred on the middle of its hop-sized slot of the clip
  const firstStart = Math.floor(hopLength / 2) - nFft / 2;

  for (let frame = 0; frame < frames; frame++) {
    const power = framePowerSpectrum(clip, firstStart + frame * hopLength);
    for (let band = 0; band < melBands; band++) {
      let sum = 0;
      for (let bin = 0; bin < bins; bin++) sum += MEL_FILTERS[band * bins + bin] * power[bin];
      mel[band * frames + frame] = sum;
    }
  }

  return mel;
}

/** log(mel + eps) with an 80 dB floor under the clip's peak, so gain only shifts the values. */
function logCompress(mel: Float64Array): Float64Array {
  const logMel = mel.map((value) => Math.log(value + AUDIO_PREPROCESSING.logEpsilon));
  const peak = maximumOf(logMel);
  const floor = peak - (AUDIO_PREPROCESSING.logFloorDb / 10) * Math.LN10;
  return logMel.map((value) => Math.max(value, floor));
}

/** Zero mean, unit variance over the whole clip; a constant clip becomes all zeros. */
function standardise(values: Float64Array): Float32Array {
  const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
  const variance = values.reduce((sum, value) => sum + (value - mean) ** 2, 0) / values.length;
  const deviation = Math.sqrt(variance);
  const output = new Float32Array(values.length);

  if (deviation < 1e-8) return output;
  for (let i = 0; i < values.length; i++) output[i] = (values[i] - mean) / deviation;
  return output;
}

/**
 * Checks a clip before any processing: a sample rate within SAMPLE_RATE_LIMITS_HZ, at least one
 * sample, every sample finite. Throws InputError naming `source` and the first bad sample.
 * Callers that transform a clip first (noise, gain) call it on the untouched clip, so the error
 * points at the sample that was bad in the file rather than at the first one the NaN spread to.
 */
export function checkAudioInput(samples: Float32Array, sampleRate: number, source?: string): void {
  // a rate outside the limits is a corrupt header: 4294967295 Hz resamples the clip to
  // nothing (an all-zero row), 1 Hz to millions of samples (seconds per clip)
  const rateProblem = sampleRateProblem(sampleRate);
  if (rateProblem) throw new InputError(rateProblem, source);
  if (samples.length === 0) throw new InputError('audio clip holds zero samples', source);

  const isFinite = Number.isFinite; // local alias: see kernelSum on global lookups
  for (let i = 0; i < samples.length; i++) {
    if (!isFinite(samples[i])) {
      throw new InputError(`audio sample ${i} is ${samples[i]}, expected a finite number`, source);
    }
  }
}

/**
 * Turns a mono clip at any sample rate into the audio encoder's input: a [1, 64, 64]
 * (channel, mel band, frame) standardised log-mel spectrogram, flattened row-major.
 * Throws InputError for NaN/Inf samples, an empty clip or a sample rate outside
 * SAMPLE_RATE_LIMITS_HZ (wav.ts).
 */
export function preprocessAudio(
  samples: Float32Array,
  sampleRate: number,
  options: PreprocessAudioOptions = {},
): Float32Array {
  checkAudioInput(samples, sampleRate, options.source);

  const atTargetRate = resample(samples, sampleRate, AUDIO_PREPROCESSING.sampleRate);

  const speech = trimSilence(atTargetRate);
  const clip = centreToLength(speech, AUDIO_PREPROCESSING.clipSamples);

  const mel = melSpectrogram(clip);

  return standardise(logCompress(mel));
}
