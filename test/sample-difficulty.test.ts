import { handBatch } from './helpers/hand-batch';
import {
  VolatilityTracker,
  entropyWeights,
  metricWeights,
  modalityEntropies,
  predictionConsistency,
  predictionDeviation,
  predictionStability,
  standardiseMetric,
  taskDifficulty,
} from '../orchestrator/curriculum/sample-difficulty';

/*
 * Hand-worked batch: B = 2, M = 2, K = 3 (ln 2 = 0.693147, ln 3 = 1.098612, ln 4 = 1.386294).
 *   sample 0, label 0: p1 = [1, 0, 0], p2 = [1/3, 1/3, 1/3], pf = [0.5, 0.25, 0.25]
 *                      L1 = 0, L2 = ln 3, Lf = ln 2
 *   sample 1, label 2: p1 = [0.5, 0.25, 0.25], p2 = [0.25, 0.25, 0.5], pf = [0.2, 0.2, 0.6]
 *                      L1 = ln 4, L2 = ln 2, Lf = -ln 0.6 = 0.510826
 * Inputs are float32, so expectations hold to about 1e-7.
 */

describe('entropy and delta (eq. 1)', () => {
  it('computes U per sample and modality, with 0 log 0 = 0', () => {
    // U(1, 0, 0) = 0; U(1/3 x 3) = ln 3; U(0.5, 0.25, 0.25) = 0.5 ln 2 + 2 * 0.25 ln 4
    //   = 0.346574 + 0.693147 = 1.039721 (= 1.5 ln 2), same for (0.25, 0.25, 0.5)
    const entropies = modalityEntropies(handBatch());

    expect(entropies[0]).toBe(0);
    expect(entropies[1]).toBeCloseTo(1.098612, 6);
    expect(entropies[2]).toBeCloseTo(1.039721, 6);
    expect(entropies[3]).toBeCloseTo(1.039721, 6);
  });

  it('gives delta = softmax(-U) over modalities', () => {
    // sample 0: exp(-0) = 1, exp(-ln 3) = 1/3, total 4/3 -> delta = [0.75, 0.25]
    // sample 1: equal entropies -> delta = [0.5, 0.5]
    const delta = entropyWeights(handBatch());

    expect(Array.from(delta).map((d) => Number(d.toFixed(6)))).toEqual([0.75, 0.25, 0.5, 0.5]);
    expect(delta[0] + delta[1]).toBeCloseTo(1, 12);
    expect(delta[2] + delta[3]).toBeCloseTo(1, 12);
  });

  it('stays finite and sums to 1 when the entropies are far apart', () => {
    const batch = handBatch();
    batch.unimodalProbs = [
      Float32Array.from([1, 0, 0, 1, 0, 0]),
      Float32Array.from([1 / 3, 1 / 3, 1 / 3, 0, 0, 1]),
    ];
    const delta = entropyWeights(batch);

    delta.forEach((d) => expect(Number.isFinite(d)).toBe(true));
    expect(delta[0] + delta[1]).toBeCloseTo(1, 12);
    // sample 1: both entropies 0 -> equal weights
    expect(delta[2]).toBeCloseTo(0.5, 12);
  });
});

describe('deviation D_L (eq. 1)', () => {
  it('adds the delta-weighted unimodal losses to the fused loss', () => {
    // sample 0: ln 2 + 0.75 * 0 + 0.25 * ln 3 = 0.693147 + 0.274653 = 0.967800
    // sample 1: 0.510826 + 0.5 * ln 4 + 0.5 * ln 2 = 0.510826 + 1.039721 = 1.550546
    const batch = handBatch();
    const deviation = predictionDeviation(batch, entropyWeights(batch));

    expect(deviation[0]).toBeCloseTo(0.9678, 5);
    expect(deviation[1]).toBeCloseTo(1.550546, 5);
  });
});

describe('consistency D_C (eq. 2)', () => {
  it('averages the squared distances to the fused prediction', () => {
    // sample 0: ||p1 - pf||^2 = 0.25 + 0.0625 + 0.0625 = 0.375
    //           ||p2 - pf||^2 = (1/6)^2 + 2 (1/12)^2 = 6/144 = 0.041667; mean = 0.208333
    // sample 1: ||(0.3, 0.05, -0.35)||^2 = 0.215; ||(0.05, 0.05, -0.1)||^2 = 0.015; mean 0.115
    const consistency = predictionConsistency(handBatch());

    expect(consistency[0]).toBeCloseTo(0.208333, 6);
    expect(consistency[1]).toBeCloseTo(0.115, 6);
  });
});

describe('stability D_S (eq. 3)', () => {
  it('averages the wrong-class logs in the default form', () => {
    // sample 0: -ln 0.5 + (ln 0.25 + ln 0.25) / 2 = 0.693147 - 1.386294 = -ln 2
    // sample 1: -ln 0.6 + (ln 0.2 + ln 0.2) / 2 = 0.510826 - 1.609438 = -1.098612 = -ln 3
    const stability = predictionStability(handBatch(), {
      form: 'mean-clamped',
      probabilityFloor: 1e-6,
    });

    expect(stability[0]).toBeCloseTo(-Math.log(2), 6);
    expect(stability[1]).toBeCloseTo(-Math.log(3), 6);
  });

  it('sums them in the paper form', () => {
    // sample 0: 0.693147 - 2 * 1.386294 = -2.079442 = -ln 8
    // sample 1: 0.510826 - 2 * 1.609438 = -2.708050 = -ln 15
    const stability = predictionStability(handBatch(), {
      form: 'paper-sum',
      probabilityFloor: 1e-6,
    });

    expect(stability[0]).toBeCloseTo(-Math.log(8), 6);
    expect(stability[1]).toBeCloseTo(-Math.log(15), 5);
  });

  it('clamps zero probabilities at the floor instead of taking log 0', () => {
    // pf = [1, 0, 0], label 0: -ln 1 + (ln 1e-6 + ln 1e-6) / 2 = -13.815511
    // label 1 (wrong and certain): -ln 1e-6 + (ln 1 + ln 1e-6) / 2 = 13.815511 - 6.907755
    const batch = handBatch();
    batch.fusedProbs = Float32Array.from([1, 0, 0, 1, 0, 0]);
    batch.labels = Int32Array.from([0, 1]);
    const stability = predictionStability(batch, { form: 'mean-clamped', probabilityFloor: 1e-6 });

    expect(stability[0]).toBeCloseTo(-13.815511, 5);
    expect(stability[1]).toBeCloseTo(6.907755, 5);
  });
});

describe('standardisation (eq. 4)', () => {
  it('maps each metric through sigmoid(s D)', () => {
    // sigmoid(-ln 2) = 1 / (1 + 2) = 1/3; sigmoid(-ln 3) = 1/4;
    // sigmoid(0.9678) = 1 / (1 + exp(-0.9678)) = 1 / (1 + 0.379918) = 0.724681
    const values = Float64Array.from([-Math.log(2), -Math.log(3), 0.9678]);

    const positive = standardiseMetric(values, 1);
    const negative = standardiseMetric(values, -1);

    expect(positive[0]).toBeCloseTo(1 / 3, 12);
    expect(positive[1]).toBeCloseTo(0.25, 12);
    expect(positive[2]).toBeCloseTo(0.724681, 6);
    // the paper's s = -1 for the loss flips it: 1 - 0.724681 = 0.275319
    expect(negative[2]).toBeCloseTo(0.275319, 6);
  });
});

describe('volatility EMA (eq. 5)', () => {
  const triple = (
    a: number[],
    b: number[],
    c: number[],
  ): [Float64Array, Float64Array, Float64Array] => [
    Float64Array.from(a),
    Float64Array.from(b),
    Float64Array.from(c),
  ];

  it('stays 0 on a first visit and moves by (1 - gamma) mean |change| on a second', () => {
    const tracker = new VolatilityTracker({ numSamples: 4, decay: 0.995 });
    const ids = Int32Array.from([0, 1]);

    tracker.update(ids, triple([0.2, 0.4], [0.5, 0.5], [0.9, 0.1]));
    expect(tracker.current()).toEqual([0, 0, 0]);

    // changes: deviation |0.6-0.2| = 0.4, |0.2-0.4| = 0.2 -> mean 0.3 -> 0.005 * 0.3 = 0.0015
    //          consistency 0 and 0 -> 0; stability |0.7-0.9| = 0.2, |0.5-0.1| = 0.4 -> 0.0015
    tracker.update(ids, triple([0.6, 0.2], [0.5, 0.5], [0.7, 0.5]));
    const [deviation, consistency, stability] = tracker.current();
    expect(deviation).toBeCloseTo(0.0015, 12);
    expect(consistency).toBe(0);
    expect(stability).toBeCloseTo(0.0015, 12);

    // third visit of sample 0 only: deviation change |0.1 - 0.6| = 0.5
    //   E = 0.995 * 0.0015 + 0.005 * 0.5 = 0.0014925 + 0.0025 = 0.0039925
    tracker.update(Int32Array.from([0]), triple([0.1], [0.5], [0.7]));
    expect(tracker.current()[0]).toBeCloseTo(0.0039925, 12);
    expect(tracker.current()[2]).toBeCloseTo(0.995 * 0.0015, 12);
  });

  it('averages only over samples seen before', () => {
    const tracker = new VolatilityTracker({ numSamples: 4, decay: 0.9 });
    tracker.update(Int32Array.from([0]), triple([0.2], [0.2], [0.2]));

    // sample 0 changes by 0.5; sample 3 is new and must not count as a change from 0
    tracker.update(Int32Array.from([0, 3]), triple([0.7, 0.9], [0.2, 0.9], [0.2, 0.9]));

    expect(tracker.current()[0]).toBeCloseTo(0.1 * 0.5, 12);
    expect(tracker.current()[1]).toBe(0);
  });

  it('round-trips its state and rejects a table of the wrong size', () => {
    const tracker = new VolatilityTracker({ numSamples: 2, decay: 0.5 });
    tracker.update(Int32Array.from([1]), triple([0.3], [0.4], [0.5]));
    tracker.update(Int32Array.from([1]), triple([0.5], [0.4], [0.5]));

    const copy = new VolatilityTracker({ numSamples: 2, decay: 0.5 });
    copy.loadState(JSON.parse(JSON.stringify(tracker.state())));
    expect(copy.state()).toEqual(tracker.state());
    expect(copy.current()[0]).toBeCloseTo(0.1, 12);

    const other = new VolatilityTracker({ numSamples: 3, decay: 0.5 });
    expect(() => other.loadState(tracker.state())).toThrow(/lastSeen must hold 9 numbers/);
  });
});

describe('metric weights Psi (eq. 6) and D_task', () => {
  it('is uniform until any volatility is positive', () => {
    const all = metricWeights([0, 0, 0], ['deviation', 'consistency', 'stability']);
    expect(all).toEqual([1 / 3, 1 / 3, 1 / 3]);

    const two = metricWeights([0, 0, 0], ['deviation', 'stability']);
    expect(two).toEqual([0.5, 0, 0.5]);
  });

  it('normalises the volatilities of the enabled metrics and sums to 1', () => {
    // E = (0.003, 0.001, 0.004): total 0.008 -> Psi = (0.375, 0.125, 0.5)
    const psi = metricWeights([0.003, 0.001, 0.004], ['deviation', 'consistency', 'stability']);
    expect(psi[0]).toBeCloseTo(0.375, 12);
    expect(psi[1]).toBeCloseTo(0.125, 12);
    expect(psi[2]).toBeCloseTo(0.5, 12);
    expect(psi[0] + psi[1] + psi[2]).toBeCloseTo(1, 12);

    // deviation only (Table 4, first row with a metric): Psi = (1, 0, 0)
    expect(metricWeights([0.003, 0.001, 0.004], ['deviation'])).toEqual([1, 0, 0]);
    // D_L + D_S: 0.003 / 0.007 = 0.428571, 0.004 / 0.007 = 0.571429
    const pair = metricWeights([0.003, 0.001, 0.004], ['deviation', 'stability']);
    expect(pair[0]).toBeCloseTo(0.428571, 6);
    expect(pair[1]).toBe(0);
    expect(pair[2]).toBeCloseTo(0.571429, 6);
  });

  it('combines the standardised metrics with Psi', () => {
    // sample 0: 0.375 * 0.8 + 0.125 * 0.4 + 0.5 * 0.2 = 0.3 + 0.05 + 0.1 = 0.45
    const standardised: [Float64Array, Float64Array, Float64Array] = [
      Float64Array.from([0.8]),
      Float64Array.from([0.4]),
      Float64Array.from([0.2]),
    ];
    const difficulty = taskDifficulty(standardised, [0.375, 0.125, 0.5]);

    expect(difficulty[0]).toBeCloseTo(0.45, 12);
  });
});
