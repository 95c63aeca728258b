import * as fs from 'fs';
import * as path from 'path';
import { readWavFile } from '../data/wav';
import { preprocessAudio } from '../data/audio-preprocessing';
import { preprocessImage, readImageFile } from '../data/image-preprocessing';
import { Device } from '../encoders/execution-provider';
import { OnnxEncoder } from '../encoders/onnx-encoder';
import { ExportedHead } from '../export/exported-head';
import { FeatureSet, SplitName, loadFeatureSet, splitIndices } from '../train/feature-set';
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

/** Turns one raw file into a modality's encoder input, by the modality's kind of data. */
function preprocessFile(file: string, invertImage: boolean): Float32Array {
  if (!fs.existsSync(file)) throw new InputError('input file not found', file);
  const extension = path.extname(file).toLowerCase();

  if (extension === '.wav') {
    const audio = readWavFile(file);
    return preprocessAudio(audio.samples, audio.sampleRate, { source: file });
  }
  if (extension === '.png' || extension === '.pgm') {
    const image = readImageFile(file, { invert: invertImage });
    return preprocessImage(image.pixels, image.width, image.height);
  }
  throw new InputError(`unsupported input type '${extension}' (expected .wav, .png or .pgm)`, file);
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
        features[modality.name] = await encoder.encode(
          preprocessFile(file, options.invertImage),
          1,
        );
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

function gatherSplit(set: FeatureSet, ids: Int32Array): Record<string, Float32Array> {
  const features: Record<string, Float32Array> = {};
  for (const modality of set.modalities) {
    const rows = new Float32Array(ids.length * modality.width);
    ids.forEach((id, row) => {
      rows.set(
        modality.data.subarray(id * modality.width, (id + 1) * modality.width),
        row * modality.width,
      );
    });
    features[modality.name] = rows;
  }
  return features;
}

/** Runs the exported head over one split of cached features and scores it. */
export async function predictSplit(options: {
  headPath: string;
  featureIndex: string;
  split: SplitName;
  device: Device;
}): Promise<{ split: SplitName; count: number; accuracy: number; macroF1: number }> {
  const set = loadFeatureSet(options.featureIndex);
  const ids = splitIndices(set, options.split);
  const head = await ExportedHead.create({ modelPath: options.headPath, device: options.device });

  try {
    const outputs = await head.run(gatherSplit(set, ids), ids.length);
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
