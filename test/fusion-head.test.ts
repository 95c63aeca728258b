import * as tf from '@tensorflow/tfjs';
import { FusionHead, HeadSnapshot } from '../orchestrator/model/fusion-head';
import { ShapeError } from '../orchestrator/util/errors';
import { initialiseBackend } from '../orchestrator/tf/backend';

beforeAll(async () => {
  await initialiseBackend('cpu');
});

/** A 2-modality, 2-class head with hidden width 1 and weights small enough to follow by hand. */
function handHead(kind: 'weighted-sum' | 'concat'): FusionHead {
  const snapshot: HeadSnapshot = {
    format: 'dyncim-head/1',
    kind,
    classNames: ['no', 'yes'],
    hiddenWidth: 1,
    modalities: [
      {
        name: 'a',
        featureWidth: 2,
        adapterWeight: Float32Array.from([1, 2]), // h_a = relu(x0 + 2 x1)
        adapterBias: Float32Array.from([0]),
        classifierWeight: Float32Array.from([1, -1]),
        classifierBias: Float32Array.from([0, 0.5]),
        fusionWeight: Float32Array.from([2, 3]),
      },
      {
        name: 'b',
        featureWidth: 1,
        adapterWeight: Float32Array.from([-1]), // h_b = relu(-x + 1)
        adapterBias: Float32Array.from([1]),
        classifierWeight: Float32Array.from([0, 1]),
        classifierBias: Float32Array.from([0, 0]),
        fusionWeight: Float32Array.from(kind === 'concat' ? [1, 1] : [2, 3]),
      },
    ],
    fusionBias: Float32Array.from([0.1, -0.1]),
    inferenceModalityWeights: Float32Array.from([0.5, 2]),
  };
  return FusionHead.fromSnapshot(snapshot);
}

describe('FusionHead', () => {
  it('computes eq. 13 by hand for the weighted-sum kind', () => {
    const head = handHead('weighted-sum');
    const a = tf.tensor2d([[1, 1]]); // h_a = relu(1 + 2) = 3
    const b = tf.tensor2d([[-1]]); // h_b = relu(1 + 1) = 2
    const outputs = head.forward([a, b], { modalityWeights: tf.tensor1d([0.5, 2]) });

    // unimodal: z_a = 3 * [1, -1] + [0, 0.5] = [3, -2.5]; z_b = 2 * [0, 1] = [0, 2]
    expect(Array.from(outputs.unimodalLogits[0].dataSync())).toEqual([3, -2.5]);
    expect(Array.from(outputs.unimodalLogits[1].dataSync())).toEqual([0, 2]);
    // fused: (0.5 * 3 + 2 * 2) * [2, 3] + [0.1, -0.1] = 5.5 * [2, 3] + b = [11.1, 16.4]
    const fused = outputs.fusedLogits.dataSync();
    expect(fused[0]).toBeCloseTo(11.1, 5);
    expect(fused[1]).toBeCloseTo(16.4, 5);
    head.dispose();
  });

  it('gives the concat kind one fusion block per modality', () => {
    const head = handHead('concat');
    const logits = head.predictLogits([tf.tensor2d([[1, 1]]), tf.tensor2d([[-1]])]).dataSync();
    // 0.5 * 3 * [2, 3] + 2 * 2 * [1, 1] + [0.1, -0.1] = [3 + 4 + 0.1, 4.5 + 4 - 0.1]
    expect(logits[0]).toBeCloseTo(7.1, 5);
    expect(logits[1]).toBeCloseTo(8.4, 5);
    head.dispose();
  });

  it('keeps each modality in its own parameter group', () => {
    const head = handHead('concat');
    const groups = head.parameterGroups();
    expect(groups.map((group) => group.name)).toEqual(['a', 'b', 'fusion']);
    expect(groups[0].variables.map((v) => v.shape)).toEqual([[2, 1], [1], [1, 2], [2], [1, 2]]);
    expect(groups[1].variables[0].shape).toEqual([1, 1]);
    head.dispose();
  });

  it('rejects features of the wrong width before running', () => {
    const head = handHead('weighted-sum');
    expect(() => head.forward([tf.tensor2d([[1, 1, 1]]), tf.tensor2d([[1]])])).toThrow(ShapeError);
    expect(() => head.forward([tf.tensor2d([[1, 1, 1]]), tf.tensor2d([[1]])])).toThrow(
      /modality 'a'.*\[1,3\].*\[batch, 2\]/,
    );
    expect(() => head.forward([tf.tensor2d([[1, 1]])])).toThrow(/2 modalities/);
    head.dispose();
  });

  it('round-trips through a snapshot', () => {
    const head = FusionHead.create({
      kind: 'weighted-sum',
      modalities: [
        { name: 'x', featureWidth: 5 },
        { name: 'y', featureWidth: 3 },
      ],
      classNames: ['0', '1', '2'],
      hiddenWidth: 4,
      seed: 9,
    });
    const copy = FusionHead.fromSnapshot(head.snapshot());
    const inputs = [tf.randomNormal([6, 5]) as tf.Tensor2D, tf.randomNormal([6, 3]) as tf.Tensor2D];
    const first = head.predictLogits(inputs).dataSync();
    const second = copy.predictLogits(inputs).dataSync();
    expect(Array.from(second)).toEqual(Array.from(first));
    head.dispose();
    copy.dispose();
  });
});
