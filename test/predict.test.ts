import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { PNG } from 'pngjs';
import { predictRaw } from '../orchestrator/inference/predict';
import { OnnxGraphBuilder } from '../orchestrator/export/onnx-builder';
import { exportHead } from '../orchestrator/export/export-head';
import { FusionHead } from '../orchestrator/model/fusion-head';
import { sha256OfFile } from '../orchestrator/encoders/feature-cache';
import { preprocessAudio } from '../orchestrator/data/audio-preprocessing';
import { preprocessImage } from '../orchestrator/data/image-preprocessing';
import { encodeWav16 } from '../orchestrator/data/wav';
import { initialiseBackend } from '../orchestrator/tf/backend';
import { SeededRandom } from '../orchestrator/util/rng';
import { ConfigError, InputError } from '../orchestrator/util/errors';

/**
 * `predictRaw` end to end on tiny linear encoders: raw WAV and PNG in, the same prediction as
 * preprocessing + encoder matrix + tf.js head computed by hand here.
 */

const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dyncim-predict-'));
const FEATURES = 3;
const classNames = ['0', '1', '2', '3'];

function linearEncoder(file: string, inputShape: number[], weights: Float32Array): void {
  const builder = new OnnxGraphBuilder();
  builder.addInput({ name: 'input', dims: ['batch', ...inputShape] });
  builder.addInitializer({
    name: 'weight',
    dims: [weights.length / FEATURES, FEATURES],
    values: weights,
  });
  builder.addNode({
    opType: 'Flatten',
    inputs: ['input'],
    outputs: ['flat'],
    attributes: { axis: { int: 1 } },
  });
  builder.addNode({ opType: 'MatMul', inputs: ['flat', 'weight'], outputs: ['features'] });
  builder.addOutput({ name: 'features', dims: ['batch', FEATURES] });
  fs.writeFileSync(file, builder.encode());
}

function randomWeights(seed: number, rows: number): Float32Array {
  const random = new SeededRandom(seed);
  return Float32Array.from({ length: rows * FEATURES }, () => random.normal() * 0.05);
}

/** features = input (flattened) x weights, as the tiny encoder computes. */
function encodeByHand(input: Float32Array, weights: Float32Array): Float32Array {
  const features = new Float32Array(FEATURES);
  for (let k = 0; k < input.length; k++) {
    for (let j = 0; j < FEATURES; j++) features[j] += input[k] * weights[k * FEATURES + j];
  }
  return features;
}

const audioWeights = randomWeights(1, 64 * 64);
const visualWeights = randomWeights(2, 3 * 32 * 32);
const modelsDir = path.join(folder, 'models');
const headPath = path.join(folder, 'head.onnx');
const wavPath = path.join(folder, 'clip.wav');
const pngPath = path.join(folder, 'digit.png');
const tone = Float32Array.from(
  { length: 6000 },
  (_, n) => 0.4 * Math.sin(n / 5) * Math.sin(n / 900),
);
const pixels = Float32Array.from({ length: 28 * 28 }, (_, i) =>
  ((i % 28) + Math.floor(i / 28)) % 7 > 3 ? 1 : 0,
);
let head: FusionHead;

beforeAll(async () => {
  await initialiseBackend('cpu');
  fs.mkdirSync(modelsDir);
  linearEncoder(path.join(modelsDir, 'audio-resnet18.onnx'), [1, 64, 64], audioWeights);
  linearEncoder(path.join(modelsDir, 'visual-resnet18.onnx'), [3, 32, 32], visualWeights);
  linearEncoder(path.join(folder, 'other-audio.onnx'), [1, 64, 64], randomWeights(3, 64 * 64));

  head = FusionHead.create({
    kind: 'weighted-sum',
    modalities: ['audio', 'visual'].map((name) => ({
      name,
      featureWidth: FEATURES,
      encoderSha256: sha256OfFile(path.join(modelsDir, `${name}-resnet18.onnx`)),
    })),
    classNames,
    hiddenWidth: 5,
    seed: 4,
  });
  head.inferenceModalityWeights.set([0.8, 1.3]);
  exportHead({ snapshot: head.snapshot(), outputPath: headPath });

  fs.writeFileSync(wavPath, encodeWav16({ samples: tone, sampleRate: 8000 }));
  const png = new PNG({ width: 28, height: 28 });
  pixels.forEach((value, i) => png.data.set([value * 255, value * 255, value * 255, 255], 4 * i));
  fs.writeFileSync(pngPath, PNG.sync.write(png));
});

afterAll(() => {
  head.dispose();
  fs.rmSync(folder, { recursive: true, force: true });
});

const baseOptions = () => ({
  headPath,
  inputs: { audio: wavPath, visual: pngPath },
  encoderPaths: {},
  modelsDir,
  device: 'cpu' as const,
  invertImage: false,
  allowEncoderMismatch: false,
});

describe('predictRaw', () => {
  it('matches preprocessing, encoders and the tf.js head computed by hand', async () => {
    const result = await predictRaw(baseOptions());

    // the WAV holds 16-bit samples: quantise the tone the same way before preprocessing
    const heard = tone.map((value) => Math.round(value * 32767) / 32767);
    const audio = encodeByHand(preprocessAudio(heard, 8000), audioWeights);
    const visual = encodeByHand(preprocessImage(pixels, 28, 28), visualWeights);
    const logits = head.predictLogits([tf.tensor2d(audio, [1, 3]), tf.tensor2d(visual, [1, 3])]);
    const probabilities = tf.softmax(logits).dataSync();

    classNames.forEach((name, k) => {
      expect(result.probabilities[name]).toBeCloseTo(probabilities[k], 4);
    });
    const best = classNames[probabilities.indexOf(Math.max(...probabilities))];
    expect(result.predicted).toBe(best);
    expect(Object.keys(result.modalityPredictions)).toEqual(['audio', 'visual']);
    expect(result.encoders.audio.provider).toBe('cpu');
  });

  it('refuses an encoder other than the one the head was trained with', async () => {
    const options = {
      ...baseOptions(),
      encoderPaths: { audio: path.join(folder, 'other-audio.onnx') },
    };
    await expect(predictRaw(options)).rejects.toThrow(ConfigError);
    await expect(predictRaw(options)).rejects.toThrow(/not the one the head was trained with/);
    await expect(predictRaw({ ...options, allowEncoderMismatch: true })).resolves.toBeDefined();
  });

  it('refuses inputs or encoders for modalities the head does not have', async () => {
    const typo = { ...baseOptions(), inputs: { audio: wavPath, visual: pngPath, sound: wavPath } };
    await expect(predictRaw(typo)).rejects.toThrow(/modality sound, which the head does not have/);
    const encoder = { ...baseOptions(), encoderPaths: { vision: wavPath } };
    await expect(predictRaw(encoder)).rejects.toThrow(/an encoder given for modality vision/);
  });

  it('refuses an image given as audio by its file name', async () => {
    const swapped = { ...baseOptions(), inputs: { audio: pngPath, visual: wavPath } };
    await expect(predictRaw(swapped)).rejects.toThrow(/digit\.png: 'audio' input must be \.wav/);
  });

  it('names a missing input and a file of the wrong kind', async () => {
    const noImage = { ...baseOptions(), inputs: { audio: wavPath } };
    await expect(predictRaw(noImage)).rejects.toThrow(/needs an input for 'visual'/);

    const textFile = path.join(folder, 'notes.txt');
    fs.writeFileSync(textFile, 'hello');
    const wrongKind = { ...baseOptions(), inputs: { audio: textFile, visual: pngPath } };
    await expect(predictRaw(wrongKind)).rejects.toThrow(InputError);
    await expect(predictRaw(wrongKind)).rejects.toThrow(
      /notes\.txt: 'audio' input must be \.wav; got a '\.txt' file/,
    );
  });
});
