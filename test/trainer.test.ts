import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { saveSnapshot } from '../orchestrator/model/head-snapshot';
import { FusionHead } from '../orchestrator/model/fusion-head';
import { PlainFusionMethod } from '../orchestrator/train/methods';
import { Trainer, crossEntropyPerSample } from '../orchestrator/train/trainer';
import { splitIndices } from '../orchestrator/train/feature-set';
import { initialiseBackend } from '../orchestrator/tf/backend';
import { syntheticFeatureSet } from './helpers/synthetic-features';

beforeAll(async () => {
  await initialiseBackend('cpu');
});

function headFor(
  features: ReturnType<typeof syntheticFeatureSet>,
  kind: 'concat' | 'weighted-sum',
) {
  return FusionHead.create({
    kind,
    modalities: features.modalities.map((m) => ({ name: m.name, featureWidth: m.width })),
    classNames: features.classNames,
    hiddenWidth: 16,
    seed: 3,
  });
}

describe('crossEntropyPerSample', () => {
  it('matches -log softmax of the true class', () => {
    // logits [0, ln 3] -> p = [1/4, 3/4]; CE for class 1 is -ln(3/4), for class 0 -ln(1/4)
    const logits = tf.tensor2d([
      [0, Math.log(3)],
      [0, Math.log(3)],
    ]);
    const labels = tf.tensor2d([
      [0, 1],
      [1, 0],
    ]);
    const values = crossEntropyPerSample(labels, logits).dataSync();
    expect(values[0]).toBeCloseTo(-Math.log(0.75), 5);
    expect(values[1]).toBeCloseTo(-Math.log(0.25), 5);
    tf.dispose([logits, labels]);
  });
});

describe('Trainer with plain fusion', () => {
  it('learns well above chance, per-modality accuracy in the expected order', async () => {
    const features = syntheticFeatureSet({ samples: 800, classes: 4 });
    const head = headFor(features, 'concat');
    const trainer = new Trainer(head, new PlainFusionMethod(), features, {
      epochs: 15,
      batchSize: 32,
    });

    const history = await trainer.fit();
    const test = trainer.evaluate('test');

    expect(history).toHaveLength(15);
    expect(test.accuracy).toBeGreaterThan(0.8); // chance is 0.25
    expect(test.modalityAccuracy.strong).toBeGreaterThan(test.modalityAccuracy.weak);
    expect(test.accuracy).toBeGreaterThanOrEqual(test.modalityAccuracy.weak);
    expect(history[14].trainLoss).toBeLessThan(history[0].trainLoss);
    trainer.dispose();
    head.dispose();
  });

  it('keeps the tensor count flat across steps, a checkpoint save and an evaluation', () => {
    const features = syntheticFeatureSet({ samples: 200 });
    const head = headFor(features, 'weighted-sum');
    const trainer = new Trainer(head, new PlainFusionMethod(), features, { batchSize: 16 });
    const ids = splitIndices(features, 'train').subarray(0, 16);

    const step = () => {
      const batch = trainer.makeBatch(ids, 0);
      trainer.trainStep(batch);
      tf.dispose([batch.labelsOneHot, ...batch.features]);
    };

    step();
    const afterFirst = tf.memory().numTensors;
    for (let i = 0; i < 25; i++) step();
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dyncim-trainer-'));
    saveSnapshot(path.join(folder, 'checkpoint.json'), head.snapshot());
    fs.rmSync(folder, { recursive: true, force: true });
    trainer.evaluate('val');
    step();

    expect(tf.memory().numTensors).toBe(afterFirst);
    trainer.dispose();
    head.dispose();
  });
});
