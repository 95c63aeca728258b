import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { exportHead } from '../orchestrator/export/export-head';
import { ExportedHead } from '../orchestrator/export/exported-head';
import { OnnxGraphBuilder } from '../orchestrator/export/onnx-builder';
import { verifyExport } from '../orchestrator/export/verify-export';
import { FusionHead, HeadKind } from '../orchestrator/model/fusion-head';
import { initialiseBackend } from '../orchestrator/tf/backend';
import { ConfigError, InputError, ShapeError } from '../orchestrator/util/errors';
import { SeededRandom } from '../orchestrator/util/rng';
import {
  AUDIO_WIDTH,
  IMAGE_WIDTH,
  argmaxRows,
  makeTemporaryFolder,
  maxAbsDifference,
  randomHead,
  randomRows,
  removeFolder,
} from './helpers/export-fixtures';

let scratch: string;

beforeAll(async () => {
  await initialiseBackend('cpu');
  scratch = makeTemporaryFolder('exported-head');
});

afterAll(() => removeFolder(scratch));

interface Reference {
  fused: Float32Array;
  audio: Float32Array;
  image: Float32Array;
}

/** tf.js results for the same rows: predictLogits and forward(...).unimodalLogits. */
function tfjsReference(head: FusionHead, audio: Float32Array, image: Float32Array): Reference {
  const rows = audio.length / AUDIO_WIDTH;
  return tf.tidy(() => {
    const inputs = [
      tf.tensor2d(audio, [rows, AUDIO_WIDTH]),
      tf.tensor2d(image, [rows, IMAGE_WIDTH]),
    ];
    const unimodal = head.forward(inputs).unimodalLogits;
    return {
      fused: head.predictLogits(inputs).dataSync() as Float32Array,
      audio: unimodal[0].dataSync() as Float32Array,
      image: unimodal[1].dataSync() as Float32Array,
    };
  });
}

describe.each<HeadKind>(['weighted-sum', 'concat'])('an exported %s head', (kind) => {
  let head: FusionHead;
  let exported: ExportedHead;
  const modelPath = () => path.join(scratch, `${kind}.onnx`);

  beforeAll(async () => {
    head = randomHead(kind);
    exportHead({
      snapshot: head.snapshot(),
      outputPath: modelPath(),
      metadata: { 'dyncim.run_id': `run-${kind}`, 'dyncim.method': 'dyncim' },
    });
    exported = await ExportedHead.create({ modelPath: modelPath() });
  });

  afterAll(async () => {
    await exported.dispose();
    head.dispose();
  });

  it.each([1, 37])('matches tf.js on %i random rows', async (rows) => {
    const random = new SeededRandom(100 + rows);
    const audio = randomRows(random, rows, AUDIO_WIDTH);
    const image = randomRows(random, rows, IMAGE_WIDTH);
    const tensorsBefore = tf.memory().numTensors;

    const reference = tfjsReference(head, audio, image);
    const outputs = await exported.run({ audio, image }, rows);

    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(outputs.logits).toHaveLength(rows * 4);
    expect(maxAbsDifference(outputs.logits, reference.fused)).toBeLessThan(1e-5);
    expect(argmaxRows(outputs.logits, 4)).toEqual(argmaxRows(reference.fused, 4));
    expect(maxAbsDifference(outputs.unimodalLogits.audio, reference.audio)).toBeLessThan(1e-5);
    expect(maxAbsDifference(outputs.unimodalLogits.image, reference.image)).toBeLessThan(1e-5);
  });

  it('returns probabilities that are the softmax of the logits', async () => {
    const random = new SeededRandom(5);
    const rows = 9;
    const outputs = await exported.run(
      {
        audio: randomRows(random, rows, AUDIO_WIDTH),
        image: randomRows(random, rows, IMAGE_WIDTH),
      },
      rows,
    );

    for (let row = 0; row < rows; row++) {
      const logits = Array.from(outputs.logits.subarray(row * 4, row * 4 + 4));
      const probabilities = Array.from(outputs.probabilities.subarray(row * 4, row * 4 + 4));
      const exps = logits.map((value) => Math.exp(value));
      const total = exps.reduce((sum, value) => sum + value, 0);

      expect(probabilities.reduce((sum, value) => sum + value, 0)).toBeCloseTo(1, 6);
      probabilities.forEach((p, k) => expect(p).toBeCloseTo(exps[k] / total, 6));
    }
  });

  it('round-trips its metadata', () => {
    expect(exported.schema.kind).toBe(kind);
    expect(exported.modalityNames).toEqual(['audio', 'image']);
    expect(exported.classNames).toEqual(['zero', 'one', 'two', 'three']);
    expect(exported.schema.modalities.map((m) => m.featureWidth)).toEqual([7, 5]);
    expect(exported.schema.modalities[0].encoderSha256).toBe('a'.repeat(64));
    expect(exported.schema.inferenceModalityWeights).toEqual([
      Math.fround(0.35),
      Math.fround(1.65),
    ]);
    expect(exported.metadata['dyncim.run_id']).toBe(`run-${kind}`);
    expect(exported.metadata['dyncim.method']).toBe('dyncim');
    expect(exported.provider).toBe('cpu');
  });
});

describe('ExportedHead.run input checks', () => {
  let head: FusionHead;
  let exported: ExportedHead;
  let runSpy: jest.SpyInstance;
  const modelPath = () => path.join(scratch, 'checks.onnx');

  beforeAll(async () => {
    head = randomHead('concat', 3);
    exportHead({ snapshot: head.snapshot(), outputPath: modelPath() });
    exported = await ExportedHead.create({ modelPath: modelPath() });
    // ort types InferenceSession as a factory; at run time it is the class sessions come from
    const sessionClass = ort.InferenceSession as unknown as { prototype: ort.InferenceSession };
    runSpy = jest.spyOn(sessionClass.prototype, 'run');
  });

  afterAll(async () => {
    runSpy.mockRestore();
    await exported.dispose();
    head.dispose();
  });

  beforeEach(() => runSpy.mockClear());

  const rows = 3;
  const audio = () => new Float32Array(rows * AUDIO_WIDTH);
  const image = () => new Float32Array(rows * IMAGE_WIDTH);

  it('accepts well-formed features (the spy sees the run)', async () => {
    await exported.run({ audio: audio(), image: image() }, rows);
    expect(runSpy).toHaveBeenCalledTimes(1);
  });

  it('rejects a wrong feature width before running, naming the head file', async () => {
    const tooWide = new Float32Array(rows * 6);
    await expect(exported.run({ audio: tooWide, image: image() }, rows)).rejects.toThrow(
      new ShapeError(`${modelPath()}: features for 'audio' have width 6, the head expects 7`),
    );
    expect(runSpy).not.toHaveBeenCalled();
  });

  it('rejects a length that is no whole number of rows', async () => {
    const short = new Float32Array(rows * IMAGE_WIDTH - 1);
    await expect(exported.run({ audio: audio(), image: short }, rows)).rejects.toThrow(
      `${modelPath()}: features for 'image' hold 14 values; batch size 3 x width 5 needs 15`,
    );
    expect(runSpy).not.toHaveBeenCalled();
  });

  it('rejects a missing modality, naming the head file', async () => {
    await expect(exported.run({ audio: audio() }, rows)).rejects.toThrow(
      new ShapeError(
        `${modelPath()}: no features for modality 'image'; the head takes ` +
          "'audio' (width 7), 'image' (width 5)",
      ),
    );
    expect(runSpy).not.toHaveBeenCalled();
  });

  it('rejects an unknown modality, naming the head file', async () => {
    const features = { audio: audio(), image: image(), text: new Float32Array(3) };
    await expect(exported.run(features, rows)).rejects.toThrow(ShapeError);
    await expect(exported.run(features, rows)).rejects.toThrow(
      `${modelPath()}: features given for unknown modalities 'text'`,
    );
    expect(runSpy).not.toHaveBeenCalled();
  });

  it('rejects NaN features, naming the head file and the row', async () => {
    const values = audio();
    values[2 * AUDIO_WIDTH + 1] = NaN;
    const failure = exported.run({ audio: values, image: image() }, rows);
    await expect(failure).rejects.toThrow(
      new InputError("features for 'audio' hold NaN in row 2", modelPath()),
    );
    await expect(failure).rejects.toMatchObject({ name: 'InputError', path: modelPath() });
    expect(runSpy).not.toHaveBeenCalled();
  });

  it('rejects a batch size that is not a positive integer', async () => {
    await expect(exported.run({ audio: audio(), image: image() }, 0)).rejects.toThrow(ConfigError);
    await expect(exported.run({ audio: audio(), image: image() }, 0)).rejects.toThrow(
      `${modelPath()}: batchSize must be a positive integer`,
    );
  });
});

describe('ExportedHead.create', () => {
  it('names the file when it does not exist', async () => {
    const modelPath = path.join(scratch, 'absent.onnx');
    await expect(ExportedHead.create({ modelPath })).rejects.toThrow(
      new InputError('ONNX head file not found', modelPath),
    );
  });

  it('rejects random bytes as not an ONNX model, naming the file', async () => {
    const modelPath = path.join(scratch, 'random.onnx');
    const bytes = new Uint8Array(256);
    const random = new SeededRandom(9);
    for (let i = 0; i < bytes.length; i++) bytes[i] = random.integer(0, 256);
    fs.writeFileSync(modelPath, bytes);

    const failure = ExportedHead.create({ modelPath });
    await expect(failure).rejects.toThrow(InputError);
    await expect(ExportedHead.create({ modelPath })).rejects.toThrow(
      new RegExp(`^${modelPath}: not an ONNX model`),
    );
  });

  it('rejects an ONNX model without dyncim metadata, naming the file', async () => {
    const builder = new OnnxGraphBuilder();
    builder.addInput({ name: 'x', dims: ['batch', 2] });
    builder.addNode({ opType: 'Relu', inputs: ['x'], outputs: ['y'] });
    builder.addOutput({ name: 'y', dims: ['batch', 2] });
    const modelPath = path.join(scratch, 'plain.onnx');
    fs.writeFileSync(modelPath, builder.encode());

    await expect(ExportedHead.create({ modelPath })).rejects.toThrow(
      `${modelPath}: not a dyncim head export: the model (producer 'dyncim') has no ` +
        "'dyncim.schema' metadata",
    );
  });

  it('rejects a graph that lacks what its schema promises', async () => {
    const head = randomHead('concat');
    const schemaSource = path.join(scratch, 'schema-source.onnx');
    const { schema } = exportHead({ snapshot: head.snapshot(), outputPath: schemaSource });
    head.dispose();

    // a valid schema on a graph whose only input is 'x'
    const builder = new OnnxGraphBuilder();
    builder.addInput({ name: 'x', dims: ['batch', 2] });
    builder.addNode({ opType: 'Relu', inputs: ['x'], outputs: ['logits'] });
    builder.addOutput({ name: 'logits', dims: ['batch', 2] });
    builder.setMetadata('dyncim.schema', JSON.stringify(schema));
    const modelPath = path.join(scratch, 'mismatch.onnx');
    fs.writeFileSync(modelPath, builder.encode());

    await expect(ExportedHead.create({ modelPath })).rejects.toThrow(
      `${modelPath}: the graph does not match its 'dyncim.schema' metadata: missing inputs ` +
        '[features_audio, features_image], outputs [probabilities, logits_audio, logits_image]',
    );
  });

  it('refuses to run after dispose', async () => {
    const head = randomHead('weighted-sum');
    const modelPath = path.join(scratch, 'disposed.onnx');
    exportHead({ snapshot: head.snapshot(), outputPath: modelPath });
    head.dispose();

    const exported = await ExportedHead.create({ modelPath });
    await exported.dispose();
    await expect(exported.run({}, 1)).rejects.toThrow(/was disposed/);
  });
});

describe('verifyExport', () => {
  it('finds agreement for a faithful export and disagreement for a tampered one', async () => {
    const head = randomHead('weighted-sum', 21);
    const snapshot = head.snapshot();
    head.dispose();
    const modelPath = path.join(scratch, 'verify.onnx');
    exportHead({ snapshot, outputPath: modelPath });

    const faithful = await verifyExport({ snapshot, modelPath, rows: 8 });
    expect(faithful.rows).toBe(8);
    expect(faithful.maxAbsDifference).toBeLessThan(1e-5);
    expect(faithful.argmaxDisagreements).toBe(0);

    // compare the file against a snapshot whose fusion bias moved by 0.5 in class 1
    const fusionBias = snapshot.fusionBias.slice();
    fusionBias[1] += 0.5;
    const tampered = await verifyExport({ snapshot: { ...snapshot, fusionBias }, modelPath });
    expect(tampered.maxAbsDifference).toBeCloseTo(0.5, 5);
    expect(tampered.nonFiniteLogits).toBe(0);
    expect(tampered.maxAbsLogit).toBeGreaterThan(0);
  });

  it('counts overflowing logits and never reports a NaN difference', async () => {
    const head = randomHead('concat', 22);
    const snapshot = head.snapshot();
    head.dispose();
    const scale = (values: Float32Array) => values.map((value) => value * 3e37);
    const extreme = {
      ...snapshot,
      modalities: snapshot.modalities.map((modality) => ({
        ...modality,
        adapterWeight: scale(modality.adapterWeight),
        classifierWeight: scale(modality.classifierWeight),
        fusionWeight: scale(modality.fusionWeight),
      })),
    };
    const modelPath = path.join(scratch, 'overflow.onnx');
    exportHead({ snapshot: extreme, outputPath: modelPath });

    const result = await verifyExport({ snapshot: extreme, modelPath, rows: 4 });
    expect(result.nonFiniteLogits).toBeGreaterThan(0);
    expect(Number.isNaN(result.maxAbsDifference)).toBe(false);
  });
});
