import {
  CurriculumBatch,
  CurriculumOutput,
  DynCimCurriculum,
} from '../orchestrator/curriculum/dyncim-curriculum';
import type { DynCimOptions } from '../orchestrator/curriculum/curriculum-options';
import { ConfigError, InputError } from '../orchestrator/util/errors';
import { SeededRandom } from '../orchestrator/util/rng';
import { handBatch as handBatchAt } from './helpers/hand-batch';

/** The shared hand-worked batch, late in training unless told otherwise. */
const handBatch = (progress = 1) => handBatchAt(progress);

/*
 * Hand-worked batch: B = 2, M = 2, K = 3 (ln 2 = 0.693147, ln 3 = 1.098612, ln 4 = 1.386294).
 *   sample 0, label 0: p1 = [1, 0, 0], p2 = [1/3, 1/3, 1/3], pf = [0.5, 0.25, 0.25]
 *                      L1 = 0, L2 = ln 3, Lf = ln 2
 *   sample 1, label 2: p1 = [0.5, 0.25, 0.25], p2 = [0.25, 0.25, 0.5], pf = [0.2, 0.2, 0.6]
 *                      L1 = ln 4, L2 = ln 2, Lf = -ln 0.6 = 0.510826
 *
 * Sample level (worked in test/sample-difficulty.test.ts):
 *   delta = [0.75, 0.25 | 0.5, 0.5]; D_L = L_task = [0.967800, 1.550546]
 *   D'_L = sigmoid(D_L) = [0.724681, 0.824993]; D'_C = sigmoid([0.208333, 0.115])
 *   = [0.551896, 0.528718]; D'_S = sigmoid([-ln 2, -ln 3]) = [1/3, 1/4]
 *   first step, Psi = 1/3 each: D_task = [(0.724681 + 0.551896 + 0.333333) / 3,
 *   (0.824993 + 0.528718 + 0.25) / 3] = [0.536637, 0.534570]
 *
 * Modality level:
 *   sample 0: log(L1 / Lf) = log(0) clamped to -5, log(ln 3 / ln 2) = 0.460517
 *     D_G = exp((-5 + 0.460517) / 2) = 0.103341; Gain = [exp(-huge) = 0, exp(0.405465 /
 *     1.098612) = 1.446389]; omega = softmax(-0, -ln 3) = [0.75, 0.25]
 *     D_H = 2 / (0.75 (1 + 1e6) + 0.25 (1 + 1 / 1.446390)) = 2.666662e-6
 *     lambda = 0.5 + 0.5 sigmoid(1.446389 / 2) = 0.836655 (both)
 *     g = sigmoid(0.836655 * 0.103341 + 0.163345 * 2.7e-6) = sigmoid(0.086461) = 0.521602
 *     omega* = [0.75 * 1.521602, 0.25 * 1.521602] = [1.141201, 0.380400]
 *   sample 1: D_G = sqrt((ln 4 / 0.510826) (ln 2 / 0.510826)) = 1.918968
 *     Gain = [exp(0.875526 / 1.386294), exp(0.182322 / 0.693147)] = [1.880461, 1.300871]
 *     omega = softmax(-ln 4, -ln 2) = [1/4, 1/2] / (3/4) = [1/3, 2/3]
 *     D_H = 2 / (1 + (1/3) / 1.880461 + (2/3) / 1.300871) = 1.183615
 *     lambda = 0.5 + 0.5 sigmoid(0.289795) = 0.785973
 *     g = sigmoid(0.785973 * 1.918968 + 0.214027 * 1.183615) = sigmoid(1.761612) = 0.853408
 *     omega* = [1/3 * 1.853408, 2/3 * 1.853408] = [0.617803, 1.235605]
 *   D_fuse = [0.521602, 0.853408]
 *
 * Objective: W = D_task D_fuse = [0.279911, 0.456206]; scores W L = [0.270898, 0.707369]
 */

function curriculum(options: Partial<DynCimOptions> = {}): DynCimCurriculum {
  return new DynCimCurriculum({ numSamples: 4, numModalities: 2, ...options });
}

function stepOnce(options: Partial<DynCimOptions> = {}, progress = 1): CurriculumOutput {
  return curriculum(options).step(handBatch(progress));
}

function expectClose(actual: ArrayLike<number>, expected: number[], digits = 5): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((value, index) => expect(actual[index]).toBeCloseTo(value, digits));
}

describe('DynCimCurriculum.step on the hand-worked batch', () => {
  it('returns delta, omega* and the eq. 14 weights after the ramp', () => {
    // p = 1: eta = 1.1 * 0.707369 / 2 = 0.389053
    //   v = 1 - s / (2 eta) = [1 - 0.270898 / 0.778106, 1 - 1 / 1.1] = [0.651850, 0.090909]
    //   v W = [0.182461, 0.041473]; sum 0.223934 -> w = [0.814796, 0.185204]
    const output = stepOnce();

    expectClose(output.unimodalLossWeights, [0.75, 0.25, 0.5, 0.5], 6);
    expectClose(output.modalityWeights, [1.141201, 0.3804, 0.617803, 1.235605]);
    expectClose(output.sampleWeights, [0.814796, 0.185204]);
    expect(output.stats.eta).toBeCloseTo(0.389053, 5);
    expect(output.stats.admittedFraction).toBe(1);
    expect(output.stats.targetFraction).toBe(1);
  });

  it('reports batch means in the stats', () => {
    const { stats } = stepOnce();

    expectClose(stats.psi, [1 / 3, 1 / 3, 1 / 3], 12);
    expect(stats.volatility).toEqual([0, 0, 0]);
    // gates (0.521602 + 0.853408) / 2 = 0.687505, the same for both modalities
    expectClose(stats.gate, [0.687505, 0.687505]);
    expectClose(stats.omegaStar, [(1.141201 + 0.617803) / 2, (0.3804 + 1.235605) / 2]);
    // lambda (0.836655 + 0.785973) / 2 = 0.811314; D_G (0.103341 + 1.918968) / 2 = 1.011155
    expectClose(stats.lambda, [0.811314, 0.811314]);
    expect(stats.gmr).toBeCloseTo(1.011155, 5);
    // D_H (2.7e-6 + 1.183615) / 2 = 0.591809
    expect(stats.hmir).toBeCloseTo(0.591809, 5);
    expect(stats.dTask).toBeCloseTo((0.536637 + 0.53457) / 2, 5);
    expect(stats.dFuse).toBeCloseTo(0.687505, 5);
  });

  it('admits only the easier half at the start of training', () => {
    // p0 = 0.5, B = 2 -> one sample; 2 eta = 0.707369, so sample 1 gets v = 0 -> w = [1, 0]
    const output = stepOnce({}, 0);

    expectClose(output.sampleWeights, [1, 0], 12);
    expect(output.stats.eta).toBeCloseTo(0.707369 / 2, 5);
    expect(output.stats.targetFraction).toBe(0.5);
    expect(output.stats.admittedFraction).toBe(0.5);
  });

  it('follows the linear ramp: p = 0.75 at a quarter of training', () => {
    // p(0.25) = 0.5 + 0.5 * 0.25 / 0.5 = 0.75; ceil(0.75 * 2) = 2 -> everyone admitted
    const output = stepOnce({}, 0.25);

    expect(output.stats.targetFraction).toBe(0.75);
    expect(output.stats.admittedFraction).toBe(1);
  });
});

describe('EMA volatility across steps', () => {
  it('is 0 after two identical visits and moves only the deviation when only L_f moves', () => {
    const dyncim = curriculum();
    dyncim.step(handBatch());
    expect(dyncim.step(handBatch()).stats.volatility).toEqual([0, 0, 0]);

    // sample 0's L_f: ln 2 -> ln 4; D_L = ln 4 + 0.25 ln 3 = 1.660947; D'_L = 0.840365
    //   change 0.840365 - 0.724681 = 0.115684; sample 1 unchanged -> mean 0.057842
    //   E_L = 0.995 * 0 + 0.005 * 0.057842 = 0.000289211; E_C = E_S = 0 -> Psi = [1, 0, 0]
    const moved = handBatch();
    moved.fusedLosses[0] = Math.log(4);
    const { stats } = dyncim.step(moved);

    expect(stats.volatility[0]).toBeCloseTo(0.000289211, 8);
    expect(stats.volatility[1]).toBe(0);
    expect(stats.psi).toEqual([1, 0, 0]);
    // D_task = D'_L = [0.840365, 0.824993]
    expect(stats.dTask).toBeCloseTo((0.840365 + 0.824993) / 2, 5);
  });
});

describe('ablation switches', () => {
  const base = stepOnce();

  it('SDC off: D_task = 1, W = D_fuse', () => {
    // W = [0.521602, 0.853408]; s = [0.504806, 1.323224]; eta = 0.727773
    //   v = [0.653190, 0.090909]; v W = [0.340708, 0.077583] -> w = [0.814524, 0.185476]
    const output = stepOnce({ sampleCurriculum: false });

    expect(output.stats.dTask).toBe(1);
    expectClose(output.sampleWeights, [0.814524, 0.185476]);
  });

  it('Table 4: D_L only and D_L + D_S', () => {
    // D_L only: D_task = D'_L = [0.724681, 0.824993]
    const deviationOnly = stepOnce({ sampleMetrics: ['deviation'] });
    expect(deviationOnly.stats.psi).toEqual([1, 0, 0]);
    expect(deviationOnly.stats.dTask).toBeCloseTo((0.724681 + 0.824993) / 2, 5);

    // D_L + D_S: sample 0 (0.724681 + 1/3) / 2 = 0.529007, sample 1 (0.824993 + 0.25) / 2
    const withStability = stepOnce({ sampleMetrics: ['deviation', 'stability'] });
    expect(withStability.stats.psi).toEqual([0.5, 0, 0.5]);
    expect(withStability.stats.dTask).toBeCloseTo((0.529007 + 0.537496) / 2, 5);
  });

  it('MDC off: D_fuse = 1 and uniform omega*', () => {
    // W = D_task = [0.536637, 0.534570] -> w = [0.826163, 0.173837]
    const output = stepOnce({ modalityCurriculum: false });

    expect(output.stats.dFuse).toBe(1);
    expect(Array.from(output.modalityWeights)).toEqual([0.5, 0.5, 0.5, 0.5]);
    expectClose(output.sampleWeights, [0.826163, 0.173837]);
  });

  it('Table 6: uniform weighting keeps D_fuse from the gate', () => {
    const output = stepOnce({ modalityWeighting: 'uniform' });

    expect(Array.from(output.modalityWeights)).toEqual([0.5, 0.5, 0.5, 0.5]);
    expect(output.stats.dFuse).toBeCloseTo(0.687505, 5);
    expectClose(output.sampleWeights, Array.from(base.sampleWeights), 6);
  });

  it('Table 5: gate from GMR only', () => {
    // g = sigmoid(D_G) = [sigmoid(0.103341), sigmoid(1.918968)] = [0.525812, 0.872023]
    const output = stepOnce({ gateSource: 'gmr' });

    expect(output.stats.dFuse).toBeCloseTo((0.525812 + 0.872023) / 2, 5);
  });

  it('Table 5: gate from HMIR only', () => {
    // g = sigmoid(D_H) = [sigmoid(2.7e-6) = 0.500001, sigmoid(1.183615) = 0.765597]
    const output = stepOnce({ gateSource: 'hmir' });

    expect(output.stats.dFuse).toBeCloseTo((0.500001 + 0.765597) / 2, 5);
  });

  it('renormalising omega* over the active set gives back omega for bimodal data', () => {
    const output = stepOnce({ renormaliseFusedWeights: true });

    expectClose(output.modalityWeights, [0.75, 0.25, 1 / 3, 2 / 3], 6);
  });

  it('tau above both gates drops nothing for bimodal data (the gates tie)', () => {
    const output = stepOnce({ gateThreshold: 0.9 });

    expect(Array.from(output.modalityWeights)).toEqual(Array.from(base.modalityWeights));
  });

  it('stability in the paper form and the paper sign of the loss change D_task', () => {
    // paper-sum: D'_S = [sigmoid(-ln 8), sigmoid(-ln 15)] = [1/9, 1/16]
    //   sample 0: (0.724681 + 0.551896 + 0.111111) / 3 = 0.462563
    const paperSum = stepOnce({ stabilityForm: 'paper-sum' });
    const sample1 = (0.824993 + 0.528718 + 0.0625) / 3;
    expect(paperSum.stats.dTask).toBeCloseTo((0.462563 + sample1) / 2, 5);

    // s_L = -1: D'_L = 1 - 0.724681 = 0.275319 -> sample 0: (0.275319 + 0.551896 + 1/3) / 3
    const flipped = stepOnce({ deviationSign: -1 });
    const flipped1 = (0.175007 + 0.528718 + 0.25) / 3;
    expect(flipped.stats.dTask).toBeCloseTo((0.386849 + flipped1) / 2, 5);
  });

  it('GMR in the paper form is unbounded on a zero loss', () => {
    // sample 0: sqrt((ln 2 / 1e-12) (ln 2 / ln 3)) = 661307 (the floor keeps it finite)
    const output = stepOnce({ gmrForm: 'paper' });

    expect(output.stats.gmr).toBeGreaterThan(300000);
    expect(Number.isFinite(output.stats.gmr)).toBe(true);
  });
});

describe('curriculum strategies (Fig. 6)', () => {
  it("'none': equal weights, eta infinite", () => {
    const output = stepOnce({ strategy: 'none' }, 0);

    expect(Array.from(output.sampleWeights)).toEqual([0.5, 0.5]);
    expect(output.stats.eta).toBe(Infinity);
    expect(output.stats.admittedFraction).toBe(1);
  });

  it("'easy-to-hard': W = 1, pace on the task loss alone", () => {
    // start: admits the lower loss (sample 0) only
    expect(Array.from(stepOnce({ strategy: 'easy-to-hard' }, 0).sampleWeights)).toEqual([1, 0]);

    // end: eta = 1.1 * 1.550546 / 2 = 0.852800; v = [1 - 0.967800 / 1.705601, 0.090909]
    //   = [0.432575, 0.090909] -> w = v / sum = [0.826338, 0.173662]
    expectClose(stepOnce({ strategy: 'easy-to-hard' }, 1).sampleWeights, [0.826338, 0.173662]);
  });

  it("'hard-to-easy': the pace admits the harder sample first", () => {
    expect(Array.from(stepOnce({ strategy: 'hard-to-easy' }, 0).sampleWeights)).toEqual([0, 1]);
  });
});

describe('properties on random batches', () => {
  /** Softmax of random logits, with some rows forced to one-hot or uniform. */
  function randomProbs(random: SeededRandom, rows: number, classes: number): Float32Array {
    const probs = new Float32Array(rows * classes);

    for (let row = 0; row < rows; row++) {
      const kind = random.integer(0, 4);
      const logits = Array.from({ length: classes }, () => 4 * random.normal());
      const exps = logits.map((logit) => Math.exp(logit));
      const total = exps.reduce((a, b) => a + b, 0);
      for (let k = 0; k < classes; k++) {
        probs[row * classes + k] =
          kind === 0 ? (k === 0 ? 1 : 0) : kind === 1 ? 1 / classes : exps[k] / total;
      }
    }

    return probs;
  }

  function randomBatch(random: SeededRandom, numModalities: number): CurriculumBatch {
    const batchSize = 3;
    const classes = 3;
    const labels = Int32Array.from({ length: batchSize }, () => random.integer(0, classes));
    const lossOf = (probs: Float32Array): Float32Array =>
      Float32Array.from(labels, (label, i) => {
        // a zero loss for some samples, as a one-hot correct prediction gives
        const p = probs[i * classes + label];
        return p >= 1 ? 0 : -Math.log(Math.max(p, 1e-7));
      });
    const unimodalProbs = Array.from({ length: numModalities }, () =>
      randomProbs(random, batchSize, classes),
    );
    const fusedProbs = randomProbs(random, batchSize, classes);

    return {
      sampleIds: Int32Array.from({ length: batchSize }, () => random.integer(0, 6)),
      labels,
      unimodalProbs,
      unimodalLosses: unimodalProbs.map(lossOf),
      fusedProbs,
      fusedLosses: lossOf(fusedProbs),
      numClasses: classes,
      progress: random.next(),
    };
  }

  function expectSumsToOne(values: ArrayLike<number>, width: number): void {
    for (let start = 0; start < values.length; start += width) {
      let total = 0;
      for (let m = 0; m < width; m++) total += values[start + m];
      expect(total).toBeCloseTo(1, 5);
    }
  }

  it.each([2, 3])('keeps weights in range and free of NaN (M = %i)', (numModalities) => {
    const random = new SeededRandom(7);
    const dyncim = new DynCimCurriculum({ numSamples: 6, numModalities });

    for (let step = 0; step < 60; step++) {
      const { sampleWeights, modalityWeights, unimodalLossWeights, stats } = dyncim.step(
        randomBatch(random, numModalities),
      );

      [...sampleWeights, ...modalityWeights, ...unimodalLossWeights].forEach((value) => {
        expect(Number.isFinite(value)).toBe(true);
        expect(value).toBeGreaterThanOrEqual(0);
      });
      expectSumsToOne(sampleWeights, sampleWeights.length);
      expectSumsToOne(unimodalLossWeights, numModalities);
      expect(stats.psi.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      stats.gate.forEach((gate) => expect(gate > 0.5 && gate < 1).toBe(true));
      stats.lambda.forEach((lambda) => expect(lambda >= 0.75 && lambda < 1).toBe(true));
      // omega* = omega (1 + g) with g in (0.5, 1): sums in (1.5, 2) while all stay active
      const omegaStarSum = stats.omegaStar.reduce((a, b) => a + b, 0);
      expect(omegaStarSum > 1.5 && omegaStarSum < 2).toBe(true);
    }

    // by now samples have been revisited, so Psi has left its uniform start
    const { stats } = dyncim.step(randomBatch(random, numModalities));
    expect(stats.volatility.some((value) => value > 0)).toBe(true);
  });
});

describe('state() and loadState()', () => {
  it('resumes exactly where the original continues', () => {
    const original = curriculum();
    original.step(handBatch(0.2));
    const moved = handBatch(0.4);
    moved.fusedLosses[1] = 1.2;
    original.step(moved);

    const resumed = curriculum();
    resumed.loadState(JSON.parse(JSON.stringify(original.state())));
    expect(resumed.stepCount()).toBe(2);

    const next = handBatch(0.6);
    next.unimodalLosses[0][0] = 0.3;
    expect(resumed.step(next)).toEqual(original.step(next));
  });

  it('rejects a state from another dataset or a damaged one', () => {
    const state = curriculum().state();
    const larger = new DynCimCurriculum({ numSamples: 5, numModalities: 2 });

    expect(() => larger.loadState(state)).toThrow(InputError);
    expect(() => larger.loadState(state)).toThrow(/numSamples is 4, expected 5/);
    expect(() => curriculum().loadState({ ...state, format: 'other' })).toThrow(/format/);
    expect(() => curriculum().loadState({ ...state, step: -1 })).toThrow(/step is -1/);

    const damaged = JSON.parse(JSON.stringify(state));
    damaged.volatility.lastSeen[2] = 'x';
    expect(() => curriculum().loadState(damaged)).toThrow(/lastSeen\[2\] is "x"/);
  });
});

describe('construction and input errors', () => {
  it('rejects bad options and sizes with ConfigError', () => {
    expect(() => curriculum({ volatilityDecay: 2 })).toThrow(ConfigError);
    expect(() => new DynCimCurriculum({ numSamples: 0, numModalities: 2 })).toThrow(
      /numSamples must be an integer >= 1, received 0/,
    );
  });

  it('rejects a NaN loss naming the field, before touching the EMA table', () => {
    const dyncim = curriculum();
    const bad = handBatch();
    bad.unimodalLosses[1][0] = NaN;

    expect(() => dyncim.step(bad)).toThrow(/unimodalLosses\[1\]\[0\] is NaN/);
    expect(dyncim.stepCount()).toBe(0);
    expect(dyncim.state().volatility.seen).toEqual([0, 0, 0, 0]);
  });
});
