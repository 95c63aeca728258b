import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { OnnxEncoder } from '../orchestrator/encoders/onnx-encoder';
import { ConfigError, InputError, ShapeError } from '../orchestrator/util/errors';
import { TINY_WEIGHTS, writeTinyModel } from './helpers/tiny-encoder';

let scratch: string;

beforeAll(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'dyncim-onnx-encoder-'));
});

afterAll(() => {
  fs.rmSync(scratch, { recursive: true, force: true });
});

/** Sample 0: sixteen ones. Sample 1: pixel k holds k. */
function twoSamples(): Float32Array {
  const inputs = new Float32Array(32);
  for (let k = 0; k < 16; k++) {
    inputs[k] = 1;
    inputs[16 + k] = k;
  }
  return inputs;
}

describe('OnnxEncoder on a tiny Flatten -> MatMul encoder', () => {
  let modelPath: string;
  let encoder: OnnxEncoder;

  beforeAll(async () => {
    modelPath = writeTinyModel(path.join(scratch, 'tiny.onnx'), { withLogits: true });
    encoder = await OnnxEncoder.create({ modelPath, device: 'cpu' });
  });

  afterAll(async () => {
    await encoder.dispose();
  });

  test('reads the input shape, feature width, provider and file hash', () => {
    const expectedHash = createHash('sha256').update(fs.readFileSync(modelPath)).digest('hex');

    expect(encoder.inputShape).toEqual([1, 4, 4]);
    expect(encoder.featureWidth).toBe(3);
    expect(encoder.sampleSize).toBe(16);
    expect(encoder.provider).toBe('cpu');
    expect(encoder.sha256).toBe(expectedHash);
  });

  test('encodes a batch to the hand-computed features', async () => {
    const features = await encoder.encode(twoSamples(), 2);

    // ones: [16 pixels, 0 + 1 + ... + 15, 8 evens - 8 odds]
    // k:    [0 + ... + 15, 0² + ... + 15², (0 + 2 + ... + 14) - (1 + 3 + ... + 15)]
    expect(Array.from(features)).toEqual([16, 120, 0, 120, 1240, -8]);
  });

  test('encodes a single sample', async () => {
    const features = await encoder.encode(twoSamples().subarray(16), 1);

    expect(Array.from(features)).toEqual([120, 1240, -8]);
  });

  test('BAD CALL: an input of the wrong length is a ShapeError with both lengths', async () => {
    await expect(encoder.encode(new Float32Array(20), 2)).rejects.toThrow(ShapeError);
    await expect(encoder.encode(new Float32Array(20), 2)).rejects.toThrow(/need 32 .*received 20/);
  });

  test('BAD CALL: the wrong-length ShapeError names the model file', async () => {
    const error = await encoder.encode(new Float32Array(20), 1).catch((caught) => caught);

    expect(error).toBeInstanceOf(ShapeError);
    expect(error.message).toBe(
      `${modelPath}: encode: 1 samples of [1,4,4] need 16 floats, received 20`,
    );
  });

  test('BAD CALL: a NaN input is an InputError naming the model and the sample', async () => {
    const inputs = twoSamples();
    inputs[16 + 5] = NaN;

    const error = await encoder.encode(inputs, 2).catch((caught) => caught);

    expect(error).toBeInstanceOf(InputError);
    expect(error.path).toBe(modelPath);
    expect(error.message).toMatch(/: encode: input sample 1 of the batch holds NaN/);
  });

  test.each([0, -1, 1.5])('BAD CALL: batchSize %p is a ConfigError', async (batchSize) => {
    await expect(encoder.encode(new Float32Array(16), batchSize)).rejects.toThrow(ConfigError);
  });
});

describe('OnnxEncoder.dispose', () => {
  test('makes later encode calls fail and is safe to call twice', async () => {
    const modelPath = writeTinyModel(path.join(scratch, 'disposable.onnx'));
    const encoder = await OnnxEncoder.create({ modelPath, device: 'cpu' });

    await encoder.dispose();
    await encoder.dispose();

    await expect(encoder.encode(new Float32Array(16), 1)).rejects.toThrow(/disposed/);
  });
});

describe('OnnxEncoder.create rejects files that are not encoders', () => {
  const cases: [string, Parameters<typeof writeTinyModel>[1], RegExp][] = [
    ['an input not named input', { inputName: 'pixels' }, /found inputs: pixels float32 rank 4/],
    ['a rank-2 input', { sampleShape: [16] }, /input float32 rank 2 \[batch, 16\]/],
    ['no features output', { outputName: 'embedding' }, /outputs: embedding float32 rank 2/],
  ];

  test.each(cases)('EXPECTED FAILURE: %s', async (_title, options, found) => {
    const modelPath = writeTinyModel(path.join(scratch, 'not-encoder.onnx'), options);

    const creation = OnnxEncoder.create({ modelPath, device: 'cpu' });

    await expect(creation).rejects.toThrow(InputError);
    await expect(OnnxEncoder.create({ modelPath, device: 'cpu' })).rejects.toThrow(
      new RegExp(`^${modelPath}: not an encoder: .*${found.source}`),
    );
  });

  test('EXPECTED FAILURE: random bytes are an InputError naming the file', async () => {
    const modelPath = path.join(scratch, 'random.onnx');
    fs.writeFileSync(modelPath, Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 37) % 251)));

    const error = await OnnxEncoder.create({ modelPath, device: 'cpu' }).catch((e) => e);

    expect(error).toBeInstanceOf(InputError);
    expect(error.path).toBe(modelPath);
    expect(error.message).toMatch(/cannot load this file as an ONNX model/);
  });

  test('EXPECTED FAILURE: a missing file is an InputError naming it', async () => {
    const modelPath = path.join(scratch, 'absent.onnx');

    await expect(OnnxEncoder.create({ modelPath })).rejects.toThrow(
      `${modelPath}: encoder file not found`,
    );
  });
});

/**
 * The real ResNet-18 encoders, when scripts/export_encoders.py has built them: ONNX Runtime's
 * features for the probe batch must match the torch values recorded in the provenance file.
 * Skipped until the setup command has run (or DYNCIM_ENCODER_DIR points at built encoders).
 */
const encoderDir = process.env.DYNCIM_ENCODER_DIR ?? path.join(__dirname, '..', 'models');
const builtModalities = ['audio', 'visual'].filter((modality) =>
  fs.existsSync(path.join(encoderDir, `${modality}-resnet18.json`)),
);
const describeBuilt = builtModalities.length > 0 ? describe : describe.skip;

interface Provenance {
  onnx: { sha256: string };
  inputShape: number[];
  featureWidth: number;
  probe: { featuresFirst: number[]; featuresSumPerRow: number[] };
}

describeBuilt('OnnxEncoder on the exported ResNet-18 encoders', () => {
  test.each(builtModalities)('%s: ONNX Runtime matches torch on the probe', async (modality) => {
    const stem = path.join(encoderDir, `${modality}-resnet18`);
    const provenance = JSON.parse(fs.readFileSync(`${stem}.json`, 'utf8')) as Provenance;
    const encoder = await OnnxEncoder.create({ modelPath: `${stem}.onnx`, device: 'cpu' });

    const probe = new Float32Array(2 * encoder.sampleSize).map((_, i) => (i % 17) / 17 - 0.5);
    const features = await encoder.encode(probe, 2);
    await encoder.dispose();
    const width = encoder.featureWidth;
    const rowSums = [0, 1].map((row) =>
      features.subarray(row * width, (row + 1) * width).reduce((sum, value) => sum + value, 0),
    );

    expect(encoder.sha256).toBe(provenance.onnx.sha256);
    expect(encoder.inputShape).toEqual(provenance.inputShape);
    expect(width).toBe(provenance.featureWidth);
    provenance.probe.featuresFirst.forEach((expected, i) => {
      expect(features[i]).toBeCloseTo(expected, 3);
    });
    // 512 float32 values summed in a different order: allow a relative 1e-4
    rowSums.forEach((sum, row) => {
      const expected = provenance.probe.featuresSumPerRow[row];
      expect(Math.abs(sum - expected)).toBeLessThan(1e-4 * Math.abs(expected) + 1e-3);
    });
  });
});

describe('OnnxEncoder.encode on a model that outputs NaN', () => {
  test('EXPECTED FAILURE: an InputError naming the model, sample and feature', async () => {
    const weights = TINY_WEIGHTS.map((row) => [row[0], row[1], row[2] * NaN]);
    const modelPath = writeTinyModel(path.join(scratch, 'nan.onnx'), { weights });
    const encoder = await OnnxEncoder.create({ modelPath, device: 'cpu' });

    try {
      const error = await encoder.encode(twoSamples(), 2).catch((caught) => caught);

      expect(error).toBeInstanceOf(InputError);
      expect(error.path).toBe(modelPath);
      expect(error.message).toBe(
        `${modelPath}: encode: feature 2 of sample 0 of the batch came back NaN ` +
          'from finite inputs; the model is broken',
      );
    } finally {
      await encoder.dispose();
    }
  });
});
