import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../util/atomic';
import { InputError } from '../util/errors';
import { componentLogger } from '../util/logger';
import { DatasetSplit, MANIFEST_FILE, readManifest } from './manifest';
import { corruptImage, MNIST_SIDE, readMnistImage } from './mnist-source';
import { parseUtterance, synthesizeUtterances } from './speech-synthesis';
import { encodeWav16, readWavFile } from './wav';
import { addWhiteNoise, parseNoisySource } from './audio-noise';

/**
 * Turns one dataset sample back into the raw files a user would hand to `dyncim predict`: the
 * WAV it was heard from and the image it was seen as (after corruption), so an end-to-end run
 * can show a prediction from raw inputs through the whole pipeline.
 */

/** Options of `exportSampleInputs`. */
export interface ExportSampleInputsOptions {
  /** Dataset folder holding dataset.json. */
  datasetDir: string;
  /** Where the WAV and PNG go. */
  outDir: string;
  /** Default 'test'. */
  split?: DatasetSplit;
  /** Dataset index of the sample. Default: the first sample of `split`. */
  index?: number;
  /** FSDD datasets: the recordings folder. Default: the one recorded in dataset.json. */
  fsddDir?: string;
  /** Synth datasets: espeak-ng cache. Default '.cache/espeak-ng'. */
  cacheDir?: string;
  /** Default 'espeak-ng'. */
  espeakCommand?: string;
}

export interface SampleInputs {
  index: number;
  split: DatasetSplit;
  /** Class name of the sample. */
  label: string;
  /** Written WAV file. */
  wav: string;
  /** Written PNG file (MNIST polarity: light digit on dark). */
  image: string;
  sources: { audio: string; visual: string };
}

const log = componentLogger('sample-inputs');

/** The FSDD recording as the dataset heard it: the file itself, or with its recorded noise. */
function fsddAudio(source: string, fsddDir: string, manifestFile: string): Buffer {
  const { file: name, noise } = parseNoisySource(source);
  const file = path.join(fsddDir, name);
  if (!fs.existsSync(file)) {
    throw new InputError(
      `recording ${file} named by ${manifestFile} is missing; pass fsddDir to point at the ` +
        'FSDD recordings folder',
      file,
    );
  }
  if (!noise) return fs.readFileSync(file);

  const clip = readWavFile(file);
  return encodeWav16({ samples: addWhiteNoise(clip.samples, noise), sampleRate: clip.sampleRate });
}

/** The synthesized clip, re-created from its description (espeak-ng cache, same noise). */
async function synthAudio(source: string, options: ExportSampleInputsOptions): Promise<Buffer> {
  const utterance = parseUtterance(source);
  let wav: Buffer | undefined;

  await synthesizeUtterances({
    utterances: [utterance],
    cacheDir: options.cacheDir ?? path.join('.cache', 'espeak-ng'),
    espeakCommand: options.espeakCommand,
    onClip: (_, clip) => (wav = encodeWav16(clip)),
  });
  return wav!;
}

/** 8-bit greyscale PNG of a [0, 1] image. */
function encodePng(pixels: Float32Array, side: number): Buffer {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { PNG } = require('pngjs');
  const png = new PNG({ width: side, height: side });

  pixels.forEach((value, i) => {
    const level = Math.round(Math.max(0, Math.min(1, value)) * 255);
    png.data.set([level, level, level, 255], 4 * i);
  });
  return PNG.sync.write(png, { colorType: 0 });
}

/** The corrupted MNIST image, re-created and checked against the manifest's record. */
function visualImage(
  visualSource: string,
  record: unknown,
  settings: { strength: number; seed: number; index: number },
  manifestFile: string,
): Float32Array {
  const match = /^mnist:(\d)\/(\d+)$/.exec(visualSource);
  if (!match) {
    throw new InputError(
      `sample ${settings.index}: unknown visual source ${visualSource}`,
      manifestFile,
    );
  }

  const image = readMnistImage(Number(match[1]), Number(match[2]));
  const { strength, seed, index } = settings;
  const corrupted = corruptImage(image, { strength, seed, sampleKey: index });
  if (JSON.stringify(corrupted.record) !== JSON.stringify(record)) {
    throw new InputError(
      `sample ${index}: its image corruption record does not match the build settings ` +
        `(imageCorruption ${strength}, seed ${seed}): the file was edited, or built by ` +
        'another version',
      manifestFile,
    );
  }
  return corrupted.image;
}

function chooseSample(
  samples: Array<{ index: number; split: DatasetSplit }>,
  options: ExportSampleInputsOptions,
  manifestFile: string,
): number {
  const split = options.split ?? 'test';
  if (options.index !== undefined) {
    if (!samples[options.index]) {
      throw new InputError(
        `has no sample ${options.index} (it has ${samples.length})`,
        manifestFile,
      );
    }
    return options.index;
  }

  const first = samples.find((sample) => sample.split === split);
  if (!first) throw new InputError(`has no ${split} samples`, manifestFile);
  return first.index;
}

/**
 * Writes `<outDir>/sample-<index>.wav` and `<outDir>/sample-<index>.png` for one sample and
 * returns their paths with its label. FSDD audio is the recording itself; synthesized audio is
 * re-created (16-bit) from the cache, and the image is re-created from MNIST with the sample's
 * own corruption (8-bit), both checked against dataset.json.
 */
export async function exportSampleInputs(
  options: ExportSampleInputsOptions,
): Promise<SampleInputs> {
  const manifestFile = path.join(options.datasetDir, MANIFEST_FILE);
  const manifest = readManifest(manifestFile);
  const index = chooseSample(manifest.samples, options, manifestFile);
  const sample = manifest.samples[index];

  const audioBytes =
    manifest.source === 'fsdd'
      ? fsddAudio(
          sample.sources.audio,
          options.fsddDir ?? String(manifest.build.fsddDir),
          manifestFile,
        )
      : await synthAudio(sample.sources.audio, options);
  const strength = Number(manifest.build.imageCorruption ?? 0);
  const settings = { strength, seed: manifest.seed, index };
  const { visual } = sample.sources;
  const pixels = visualImage(visual, sample.imageCorruption, settings, manifestFile);

  const wav = path.join(options.outDir, `sample-${index}.wav`);
  const image = path.join(options.outDir, `sample-${index}.png`);
  writeFileAtomic(wav, audioBytes);
  writeFileAtomic(image, encodePng(pixels, MNIST_SIDE));

  const result = {
    index,
    split: sample.split,
    label: manifest.classes[sample.label],
    wav,
    image,
    sources: sample.sources,
  };
  log.info(result, 'sample inputs written');
  return result;
}
