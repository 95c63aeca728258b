import { spawn, spawnSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { ConfigError, DependencyError, InputError } from '../util/errors';
import { componentLogger } from '../util/logger';
import { SeededRandom } from '../util/rng';
import { deriveSeed } from './seeds';
import { DecodedAudio, readWavFile } from './wav';

/**
 * Spoken digits synthesized with espeak-ng over many speakers. A speaker is an espeak-ng voice
 * (an English accent, or another language reading the English word, which gives a strong
 * accent) with a voice variant, a speaking rate and a pitch. Speakers are split into disjoint
 * sets: one pretrains the audio encoder, the others feed the fusion train / val / test splits,
 * so the encoder never hears a test speaker.
 *
 * Synthesized clips are cached as WAV files named by a hash of everything espeak-ng was given;
 * noise, gain and time shift are applied after the cache, from a per-utterance seed.
 */

// prettier-ignore
export const DIGIT_WORDS = [
  'zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine',
] as const;

/** espeak-ng voices used as accents. */
// prettier-ignore
export const SPEECH_VOICES: readonly string[] = [
  'en-us', 'en-gb', 'en-gb-scotland', 'en-gb-x-rp', 'en-gb-x-gbclan', 'en-gb-x-gbcwmd',
  'en-029', 'en-us-nyc', 'de', 'nl', 'af', 'sv', 'da', 'nb', 'es', 'it',
];

/** espeak-ng voice variants (`voice+variant`): male, female and Klatt-synthesizer timbres. */
// prettier-ignore
export const SPEECH_VARIANTS: readonly string[] = [
  'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'f1', 'f2', 'f3', 'f4', 'f5', 'klatt', 'klatt2',
  'klatt4',
];

export type SpeakerSet = 'pretrain' | 'train' | 'val' | 'test';
export const SPEAKER_SETS: readonly SpeakerSet[] = ['pretrain', 'train', 'val', 'test'];

export interface Speaker {
  /** Readable and unique, e.g. 'en-gb+f3/s172/p44'. */
  id: string;
  voice: string;
  variant: string;
  /** Words per minute (espeak-ng -s). */
  speed: number;
  /** 0..99 (espeak-ng -p). */
  pitch: number;
}

export type SpeakerPartition = Record<SpeakerSet, Speaker[]>;

/** Options of `partitionSpeakers`. */
export interface SpeakerPartitionOptions {
  /**
   * Fixes which speakers exist and which set each is in. Keep it equal (default 0) between
   * `buildPretrainArrays` and `buildDataset`, or pretraining speakers can reach a test split.
   */
  speakerSeed?: number;
  /** Speakers in all, at most voices x variants (240). Default 120. */
  speakerCount?: number;
  /** Shares of the speakers per set; test gets the rest. Default 0.4 / 0.3 / 0.15. */
  pretrainFraction?: number;
  trainFraction?: number;
  valFraction?: number;
}

/** One clip to synthesize: what espeak-ng says, and the noise, gain and shift added after. */
export interface Utterance {
  digit: number;
  word: string;
  speakerId: string;
  voice: string;
  variant: string;
  /** The speaker's rate and pitch, jittered per utterance. */
  speed: number;
  pitch: number;
  /** Signal-to-noise ratio of the added white noise, relative to the clip's mean power. */
  snrDb: number;
  /** Final amplitude scale. */
  gain: number;
  /** Silence put before the speech (and covered by the noise), in seconds. */
  leadSeconds: number;
  noiseSeed: number;
}

/** Options of `planUtterances`. */
export interface PlanUtterancesOptions {
  speakers: Speaker[];
  /** Clips per digit; speakers take turns so each says each digit about equally often. */
  clipsPerClass: number;
  /** Run seed. */
  seed: number;
  /** Separates the plans of different sets drawn with one seed. Default ''. */
  label?: string;
  /** Range of the SNR in dB. Default [5, 30]. */
  snrDbRange?: [number, number];
  /** Range of the gain. Default [0.25, 1]. */
  gainRange?: [number, number];
  /** Longest lead silence in seconds. Default 0.25. */
  maxLeadSeconds?: number;
}

/** Options of `synthesizeUtterances`. */
export interface SynthesizeOptions {
  utterances: Utterance[];
  /** Where raw espeak-ng clips are cached. */
  cacheDir: string;
  /** Called once per utterance, in completion order, with the augmented clip. */
  onClip: (index: number, clip: DecodedAudio) => void;
  /** espeak-ng processes at a time. Default 2. */
  concurrency?: number;
  /** The program to run. Default 'espeak-ng'. */
  espeakCommand?: string;
  /** Called after each clip with (done, total). */
  onProgress?: (done: number, total: number) => void;
}

export interface SynthesisStats {
  clips: number;
  /** Clips read from the cache rather than synthesized. */
  cacheHits: number;
  seconds: number;
}

const log = componentLogger('speech-synthesis');

const INSTALL_HINT = 'install the Debian package espeak-ng (apt-get install espeak-ng)';

/** Runs `espeak-ng --version`; throws DependencyError when it cannot be run. */
export function espeakVersion(espeakCommand = 'espeak-ng'): string {
  const result = spawnSync(espeakCommand, ['--version'], { encoding: 'utf8' });

  if (result.error) {
    const code = (result.error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'was not found on PATH' : `failed to start (${code})`;
    throw new DependencyError(`espeak-ng (${espeakCommand}) ${reason}: ${INSTALL_HINT}`);
  }
  if (result.status !== 0) {
    throw new DependencyError(
      `'${espeakCommand} --version' exited with ${result.status}: ${result.stderr.trim()}`,
    );
  }

  return result.stdout.trim().split('\n')[0];
}

function listColumn(espeakCommand: string, args: string[], column: number): string[] {
  const result = spawnSync(espeakCommand, args, { encoding: 'utf8' });
  if (result.error || result.status !== 0) {
    throw new DependencyError(`'${espeakCommand} ${args.join(' ')}' failed: ${INSTALL_HINT}`);
  }
  return result.stdout
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/)[column])
    .filter((value): value is string => Boolean(value));
}

/**
 * Throws ConfigError naming any voice or variant this espeak-ng lacks. Needed because
 * espeak-ng falls back to its default voice for an unknown name and still exits with 0, which
 * would silently merge 'different' speakers into one.
 */
export function checkEspeakVoices(utterances: Utterance[], espeakCommand = 'espeak-ng'): void {
  const languages = new Set(listColumn(espeakCommand, ['--voices'], 1));
  const variants = new Set(
    listColumn(espeakCommand, ['--voices=variant'], 4).map((file) => file.replace(/^!v\//, '')),
  );

  const missingVoices = new Set(
    utterances.map((item) => item.voice).filter((v) => !languages.has(v)),
  );
  const missingVariants = new Set(
    utterances.map((item) => item.variant).filter((variant) => !variants.has(variant)),
  );
  if (missingVoices.size > 0 || missingVariants.size > 0) {
    throw new ConfigError(
      `espeak-ng (${espeakCommand}) lacks voices [${[...missingVoices].join(', ')}] and ` +
        `variants [${[...missingVariants].join(', ')}]; see 'espeak-ng --voices' and ` +
        `'espeak-ng --voices=variant'`,
    );
  }
}

function checkFractions(fractions: Record<string, number>): void {
  for (const [name, value] of Object.entries(fractions)) {
    if (!(value >= 0 && value <= 1)) {
      throw new ConfigError(`${name} must be in [0, 1], received ${value}`);
    }
  }

  const total = Object.values(fractions).reduce((sum, value) => sum + value, 0);
  if (total > 1) {
    const names = Object.keys(fractions).join(' + ');
    throw new ConfigError(`${names} must be at most 1 (test takes the rest), got ${total}`);
  }
}

/**
 * A fixed population of speakers split into disjoint sets. Every voice x variant pair is one
 * candidate; `speakerSeed` shuffles them, gives each a rate (130..210 wpm) and pitch (25..75),
 * and the first `speakerCount` are cut into pretrain | train | val | test.
 */
export function partitionSpeakers(options: SpeakerPartitionOptions = {}): SpeakerPartition {
  const speakerCount = options.speakerCount ?? 120;
  const fractions = {
    pretrainFraction: options.pretrainFraction ?? 0.4,
    trainFraction: options.trainFraction ?? 0.3,
    valFraction: options.valFraction ?? 0.15,
  };
  checkFractions(fractions);

  const candidates = SPEECH_VOICES.flatMap((voice) =>
    SPEECH_VARIANTS.map((variant) => ({ voice, variant })),
  );
  if (!Number.isInteger(speakerCount) || speakerCount < 4 || speakerCount > candidates.length) {
    throw new ConfigError(
      `speakerCount must be an integer in [4, ${candidates.length}], received ${speakerCount}`,
    );
  }

  const random = new SeededRandom(deriveSeed(['speakers', options.speakerSeed ?? 0]));
  const speakers = random
    .shuffle(candidates)
    .slice(0, speakerCount)
    .map(({ voice, variant }) => {
      const speed = random.integer(130, 211);
      const pitch = random.integer(25, 76);
      return { id: `${voice}+${variant}/s${speed}/p${pitch}`, voice, variant, speed, pitch };
    });

  return cutIntoSets(speakers, fractions);
}

/** Cuts the speaker list at the cumulative fractions; every set must get a speaker. */
function cutIntoSets(
  speakers: Speaker[],
  fractions: { pretrainFraction: number; trainFraction: number; valFraction: number },
): SpeakerPartition {
  const { pretrainFraction, trainFraction, valFraction } = fractions;
  const cumulative = [0, pretrainFraction, pretrainFraction + trainFraction];
  cumulative.push(pretrainFraction + trainFraction + valFraction, 1);
  const cuts = cumulative.map((fraction) => Math.round(fraction * speakers.length));

  const partition = {} as SpeakerPartition;
  SPEAKER_SETS.forEach((set, i) => {
    partition[set] = speakers.slice(cuts[i], cuts[i + 1]);
    if (partition[set].length === 0) {
      throw new ConfigError(`speaker set '${set}' came out empty; raise speakerCount`);
    }
  });

  return partition;
}

/**
 * Decides every clip of one set: for each digit, `clipsPerClass` utterances with speakers in
 * turn (from a seeded order), rate and pitch jittered (+-8% wpm, +-6 pitch), and a seeded
 * SNR, gain and lead silence. Deterministic in (speakers, seed, label).
 */
export function planUtterances(options: PlanUtterancesOptions): Utterance[] {
  const { speakers, clipsPerClass, seed } = options;
  const [snrLow, snrHigh] = options.snrDbRange ?? [5, 30];
  const [gainLow, gainHigh] = options.gainRange ?? [0.25, 1];
  const maxLead = options.maxLeadSeconds ?? 0.25;
  if (speakers.length === 0) throw new ConfigError('planUtterances needs at least one speaker');
  if (!Number.isInteger(clipsPerClass) || clipsPerClass < 0) {
    throw new ConfigError(
      `clipsPerClass must be a non-negative integer, received ${clipsPerClass}`,
    );
  }

  const random = new SeededRandom(deriveSeed(['utterances', seed, options.label ?? '']));
  const order = random.shuffle(speakers);
  const utterances: Utterance[] = [];

  for (let digit = 0; digit < 10; digit++) {
    for (let k = 0; k < clipsPerClass; k++) {
      // offset by digit so that small plans do not give every digit to the same few speakers
      const speaker = order[(k + digit * 7) % order.length];
      utterances.push({
        digit,
        word: DIGIT_WORDS[digit],
        speakerId: speaker.id,
        voice: speaker.voice,
        variant: speaker.variant,
        speed: Math.round(speaker.speed * random.uniform(0.92, 1.08)),
        pitch: Math.max(0, Math.min(99, speaker.pitch + random.integer(-6, 7))),
        snrDb: random.uniform(snrLow, snrHigh),
        gain: random.uniform(gainLow, gainHigh),
        leadSeconds: random.uniform(0, maxLead),
        noiseSeed: random.integer(0, 2 ** 31),
      });
    }
  }

  return utterances;
}

/**
 * The utterance as one line, stored as the sample's audio source. Numbers keep full precision
 * so that `parseUtterance` gives back the exact clip.
 */
export function describeUtterance(utterance: Utterance): string {
  return (
    `espeak-ng:${utterance.voice}+${utterance.variant}` +
    ` speed=${utterance.speed} pitch=${utterance.pitch} word=${utterance.word}` +
    ` snrDb=${utterance.snrDb} gain=${utterance.gain}` +
    ` leadSeconds=${utterance.leadSeconds} noiseSeed=${utterance.noiseSeed}`
  );
}

/** Reads back a `describeUtterance` line; `speakerId` is not part of the line. */
export function parseUtterance(description: string, speakerId = ''): Utterance {
  const match = /^espeak-ng:([^+\s]+)\+(\S+)((?: \w+=\S+)+)$/.exec(description);
  const fields = Object.fromEntries(
    (match?.[3] ?? '')
      .trim()
      .split(' ')
      .map((pair) => pair.split('=') as [string, string]),
  );
  const numbers = ['speed', 'pitch', 'snrDb', 'gain', 'leadSeconds', 'noiseSeed'].map((key) =>
    Number(fields[key] ?? NaN),
  );
  const digit = DIGIT_WORDS.indexOf(fields.word as (typeof DIGIT_WORDS)[number]);
  if (!match || digit < 0 || numbers.some((value) => !Number.isFinite(value))) {
    throw new InputError(`not an espeak-ng utterance description: ${JSON.stringify(description)}`);
  }

  const [speed, pitch, snrDb, gain, leadSeconds, noiseSeed] = numbers;
  const [, voice, variant] = match;
  return {
    digit,
    word: DIGIT_WORDS[digit],
    speakerId,
    voice,
    variant,
    speed,
    pitch,
    snrDb,
    gain,
    leadSeconds,
    noiseSeed,
  };
}

/** Cache file of the raw espeak-ng output: a hash of everything that shapes it. */
function cachePath(cacheDir: string, version: string, utterance: Utterance): string {
  const key = JSON.stringify({
    version,
    voice: utterance.voice,
    variant: utterance.variant,
    speed: utterance.speed,
    pitch: utterance.pitch,
    word: utterance.word,
  });
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 24);
  return path.join(cacheDir, `${utterance.word}-${hash}.wav`);
}

/** Runs espeak-ng once, writing a WAV next to `target` and renaming it into place. */
function runEspeak(espeakCommand: string, utterance: Utterance, target: string): Promise<void> {
  const temporary = `${target}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const voice = `${utterance.voice}+${utterance.variant}`;
  const args = ['-v', voice, '-s', String(utterance.speed), '-p', String(utterance.pitch)];

  return new Promise((resolve, reject) => {
    const child = spawn(espeakCommand, [...args, '-w', temporary, utterance.word]);
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));

    child.on('error', (error: NodeJS.ErrnoException) => {
      fs.rmSync(temporary, { force: true });
      const reason =
        error.code === 'ENOENT' ? 'was not found on PATH' : `failed (${error.message})`;
      reject(new DependencyError(`espeak-ng (${espeakCommand}) ${reason}: ${INSTALL_HINT}`));
    });

    child.on('close', (status) => {
      if (status === 0 && fs.existsSync(temporary)) {
        fs.renameSync(temporary, target);
        resolve();
        return;
      }
      fs.rmSync(temporary, { force: true });
      reject(
        new ConfigError(`espeak-ng ${args.join(' ')} exited with ${status}: ${stderr.trim()}`),
      );
    });
  });
}

/**
 * The clip as heard: `leadSeconds` of silence, the speech, white noise at `snrDb` over the
 * whole, then `gain`, clipped to [-1, 1]. SNR is relative to the mean power of the raw clip.
 */
export function augmentClip(raw: DecodedAudio, utterance: Utterance): DecodedAudio {
  const lead = Math.round(utterance.leadSeconds * raw.sampleRate);
  const samples = new Float32Array(lead + raw.samples.length);
  samples.set(raw.samples, lead);

  const power = raw.samples.reduce((sum, value) => sum + value * value, 0) / raw.samples.length;
  const noiseStd = Math.sqrt(power / Math.pow(10, utterance.snrDb / 10));
  const random = new SeededRandom(utterance.noiseSeed);

  for (let i = 0; i < samples.length; i++) {
    const noisy = (samples[i] + noiseStd * random.normal()) * utterance.gain;
    samples[i] = Math.max(-1, Math.min(1, noisy));
  }

  return { samples, sampleRate: raw.sampleRate, channels: 1 };
}

/** Runs `work` over `count` items with at most `limit` in flight. */
async function forEachConcurrently(
  count: number,
  limit: number,
  work: (index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, lane));
}

/**
 * Synthesizes (or reads from the cache) every utterance, augments it and hands it to `onClip`.
 * Clips are not kept, so memory stays flat however many there are. Throws DependencyError when
 * espeak-ng is missing, ConfigError when it rejects a voice.
 */
export async function synthesizeUtterances(options: SynthesizeOptions): Promise<SynthesisStats> {
  const started = Date.now();
  const espeakCommand = options.espeakCommand ?? 'espeak-ng';
  const concurrency = options.concurrency ?? 2;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new ConfigError(`concurrency must be a positive integer, received ${concurrency}`);
  }

  const version = espeakVersion(espeakCommand);
  checkEspeakVoices(options.utterances, espeakCommand);
  fs.mkdirSync(options.cacheDir, { recursive: true });
  const total = options.utterances.length;
  let cacheHits = 0;
  let done = 0;

  await forEachConcurrently(total, concurrency, async (index) => {
    const utterance = options.utterances[index];
    const file = cachePath(options.cacheDir, version, utterance);
    if (fs.existsSync(file)) cacheHits++;
    else await runEspeak(espeakCommand, utterance, file);

    options.onClip(index, augmentClip(readWavFile(file), utterance));
    options.onProgress?.(++done, total);
  });

  const seconds = (Date.now() - started) / 1000;
  log.info({ clips: total, cacheHits, seconds, espeak: version }, 'speech synthesis finished');
  return { clips: total, cacheHits, seconds };
}
