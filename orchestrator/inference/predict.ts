import * as fs from 'fs';
import * as path from 'path';
import { readWavFile } from '../data/wav';
import { preprocessAudio } from '../data/audio-preprocessing';
import { preprocessImage, readImageFile } from '../data/image-preprocessing';
import { Device } from '../encoders/execution-provider';
import { OnnxEncoder } from '../encoders/onnx-encoder';
import { ExportedHead } from '../export/exported-head';
import {
  FeatureSet,
  SplitName,
  gatherRows,
  loadFeatureSet,
  splitIndices,
} from '../train/feature-set';
import { accuracy, argmaxRows, macroF1 } from '../train/metrics';
import { ConfigError, InputError } from '../util/errors';
import { componentLogger } from '../util/logger';

/**
 * Inference without tf.js: frozen encoders and an exported head, both in ONNX Runtime.
 */

export interface RawPrediction {
  predicted: string;
  probabilities: Record<string, number>;
  /** Each modality's own prediction, from its unimodal logits. */
  modalityPredictions: Record<string, string>;
  encoders: Record<string, { path: string; sha256: string; provider: string }>;
}

const AUDIO_EXTENSIONS = ['.wav'];
const IMAGE_EXTENSIONS = ['.png', '.pgm'];

/**
 * Turns one raw file into a modality's encoder input. The modality decides how the file is
 * read ('audio' takes WAV, 'visual' PNG or PGM), so a file given for the wrong modality is
 * refused by name rather than decoded as the other kind.
 */
function preprocessFile(modality: string, file: string, invertImage: boolean): Float32Array {
  if (!fs.existsSync(file)) throw new InputError('input file not found', file);
  const extension = path.extname(file).toLowerCase();
  const expected =
    modality === 'audio'
      ? AUDIO_EXTENSIONS
      : modality === 'visual'
        ? IMAGE_EXTENSIONS
        : [...AUDIO_EXTENSIONS, ...IMAGE_EXTENSIONS];
  if (!expected.includes(extension)) {
    throw new InputError(
      `'${modality}' input must be ${expected.join(' or ')}; got a '${extension}' file`,
      file,
    );
  }

  if (AUDIO_EXTENSIONS.includes(extension)) {
    const audio = readWavFile(file);
    return preprocessAudio(audio.samples, audio.sampleRate, { source: file });
  }
  const image = readImageFile(file, { invert: invertImage });
  return preprocessImage(image.pixels, image.width, image.height);
}

/** Refuses inputs or encoders for modalities the head does not have (likely typos). */
function checkModalityNames(kind: string, given: Record<string, string>, known: string[]): void {
  const unknown = Object.keys(given).filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    throw new ConfigError(
      `${kind} given for modality ${unknown.join(', ')}, which the head does not have ` +
        `(its modalities: ${known.join(', ')})`,
    );
  }
}

function checkEncoderMatches(
  modality: string,
  encoder: OnnxEncoder,
  expected: string | null,
  allowMismatch: boolean,
): void {
  if (!expected || encoder.sha256 === expected) return;

  const message =
    `encoder for '${modality}' (${encoder.modelPath}, sha256 ${encoder.sha256.slice(0, 12)}) is ` +
    `not the one the head was trained with (sha256 ${expected.slice(0, 12)}); its features ` +
    'would not mean what the head expects. Pass the right --encoder, or --allow-encoder-mismatch';
  if (!allowMismatch) throw new ConfigError(message);
  componentLogger('predict').warn({ modality }, message);
}

/** Predicts one sample from raw files: encoders, then the exported head. */
export async function predictRaw(options: {
  headPath: string;
  inputs: Record<string, string>;
  encoderPaths: Record<string, string>;
  modelsDir: string;
  device: Device;
  invertImage: boolean;
  allowEncoderMismatch: boolean;
}): Promise<RawPrediction> {
  const head = await ExportedHead.create({ modelPath: options.headPath, device: options.device });
  const features: Record<string, Float32Array> = {};
  const encoders: RawPrediction['encoders'] = {};

  try {
    const known = head.schema.modalities.map((modality) => modality.name);
    checkModalityNames('an input', options.inputs, known);
    checkModalityNames('an encoder', options.encoderPaths, known);
    for (const modality of head.schema.modalities) {
      const file = options.inputs[modality.name];
      if (!file) {
        throw new ConfigError(
          `the head needs an input for '${modality.name}' (--input ${modality.name}=FILE)`,
        );
      }
      const encoderPath =
        options.encoderPaths[modality.name] ??
        path.join(options.modelsDir, `${modality.name}-resnet18.onnx`);
      const encoder = await OnnxEncoder.create({ modelPath: encoderPath, device: options.device });
      try {
        checkEncoderMatches(
          modality.name,
          encoder,
          modality.encoderSha256,
          options.allowEncoderMismatch,
        );
        const input = preprocessFile(modality.name, file, options.invertImage);
        features[modality.name] = await encoder.encode(input, 1);
        encoders[modality.name] = {
          path: encoderPath,
          sha256: encoder.sha256,
          provider: encoder.provider,
        };
      } finally {
        await encoder.dispose();
      }
    }

    const outputs = await head.run(features, 1);
    const classNames = head.schema.classNames;
    const probabilities: Record<string, number> = {};
    classNames.forEach((name, k) => (probabilities[name] = outputs.probabilities[k]));
    const modalityPredictions: Record<string, string> = {};
    for (const [name, logits] of Object.entries(outputs.unimodalLogits)) {
      modalityPredictions[name] = classNames[argmaxRows(logits, classNames.length)[0]];
    }

    return {
      predicted: classNames[argmaxRows(outputs.logits, classNames.length)[0]],
      probabilities,
      modalityPredictions,
      encoders,
    };
  } finally {
    await head.dispose();
  }
}

/** Features made by other encoders than the head was trained on would not mean the same. */
function checkFeatureEncoders(
  set: FeatureSet,
  modalities: Array<{ name: string; encoderSha256: string | null }>,
  indexFile: string,
): void {
  for (const modality of modalities) {
    const features = set.modalities.find((entry) => entry.name === modality.name);
    if (!features) {
      throw new InputError(
        `holds no features for the head's modality '${modality.name}'`,
        indexFile,
      );
    }
    if (modality.encoderSha256 && features.encoderSha256 !== modality.encoderSha256) {
      throw new InputError(
        `features for '${modality.name}' come from encoder sha256 ` +
          `${String(features.encoderSha256).slice(0, 12)}, the head was trained on ` +
          `${modality.encoderSha256.slice(0, 12)}`,
        indexFile,
      );
    }
  }
}

/** Runs the exported head over one split of cached features and scores it. */
export async function predictSplit(options: {
  headPath: string;
  featureIndex: string;
  split: SplitName;
  device: Device;
}): Promise<{ split: SplitName; count: number; accuracy: number; macroF1: number }> {
  if (!['train', 'val', 'test'].includes(options.split)) {
    throw new ConfigError(`--split must be train, val or test; got '${options.split}'`);
  }
  const set = loadFeatureSet(options.featureIndex);
  const ids = splitIndices(set, options.split);
  const head = await ExportedHead.create({ modelPath: options.headPath, device: options.device });

  try {
    checkFeatureEncoders(set, head.schema.modalities, options.featureIndex);
    const outputs = await head.run(
      Object.fromEntries(set.modalities.map((m) => [m.name, gatherRows(m, ids)])),
      ids.length,
    );
    const classes = head.schema.classNames.length;
    const predictions = argmaxRows(outputs.logits, classes);
    const labels = Int32Array.from(ids, (id) => set.labels[id]);
    return {
      split: options.split,
      count: ids.length,
      accuracy: accuracy(predictions, labels),
      macroF1: macroF1(predictions, labels, classes),
    };
  } finally {
    await head.dispose();
  }
}
