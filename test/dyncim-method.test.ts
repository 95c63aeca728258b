import * as tf from '@tensorflow/tfjs';
import { FusionHead } from '../orchestrator/model/fusion-head';
import { DynCimMethod } from '../orchestrator/train/dyncim-method';
import { Trainer } from '../orchestrator/train/trainer';
import { splitIndices } from '../orchestrator/train/feature-set';
import { initialiseBackend } from '../orchestrator/tf/backend';
import { syntheticFeatureSet } from './helpers/synthetic-features';

beforeAll(async () => {
  await initialiseBackend('cpu');
});

function setup(samples: number) {
  const features = syntheticFeatureSet({ samples, classes: 4 });
  const head = FusionHead.create({
    kind: 'weighted-sum',
    modalities: features.modalities.map((m) => ({ name: m.name, featureWidth: m.width })),
    classNames: features.classNames,
    hiddenWidth: 16,
    seed: 5,
  });
  const method = new DynCimMethod({ numSamples: samples, numModalities: 2 });
  return { features, head, method };
}

describe('DynCimMethod', () => {
  it('plans weights with the documented properties', () => {
    const { features, head, method } = setup(200);
    const trainer = new Trainer(head, method, features, { batchSize: 20 });
    const ids = splitIndices(features, 'train').subarray(0, 20);
    const batch = trainer.makeBatch(ids, 0.3);

    const plan = method.planStep(head, batch);
    const sampleWeights = plan.sampleWeights.dataSync() as Float32Array;
    const modalityWeights = plan.modalityWeights!.dataSync();
    const sum = sampleWeights.reduce((a, b) => a + b, 0);

    expect(sum).toBeCloseTo(1, 5);
    expect(Math.min(...sampleWeights)).toBeGreaterThanOrEqual(0);
    expect(plan.modalityWeights!.shape).toEqual([20, 2]);
    // omega* = omega (1 + g) with g in (0.5, 1): each modality weight lies in (0, 2)
    for (const value of modalityWeights) {
      expect(value).toBeGreaterThan(0);
      expect(value).toBeLessThan(2);
    }
    expect(plan.stats?.modalityWeightMeans).toHaveLength(2);
    tf.dispose([plan.sampleWeights, plan.unimodalLossWeights, plan.modalityWeights!]);
    tf.dispose([batch.labelsOneHot, ...batch.features]);
    trainer.dispose();
    head.dispose();
  });

  it('trains a head well above chance with flat tensor memory', async () => {
    const { features, head, method } = setup(800);
    const trainer = new Trainer(head, method, features, { epochs: 12, batchSize: 32 });

    await trainer.fit();
    const afterFit = tf.memory().numTensors;
    const ids = splitIndices(features, 'train').subarray(0, 32);
    for (let i = 0; i < 5; i++) {
      const batch = trainer.makeBatch(ids, 0.9);
      trainer.trainStep(batch);
      tf.dispose([batch.labelsOneHot, ...batch.features]);
    }
    const test = trainer.evaluate('test');

    expect(tf.memory().numTensors).toBe(afterFit);
    expect(test.accuracy).toBeGreaterThan(0.8); // chance is 0.25
    expect(Array.from(head.inferenceModalityWeights).every((w) => w > 0 && w < 2)).toBe(true);
    trainer.dispose();
    head.dispose();
  });
});
