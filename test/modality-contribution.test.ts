import {
  BatchLosses,
  balanceFactors,
  fusedModalityWeights,
  fusionDifficulty,
  fusionGains,
  geometricMeanRatio,
  harmonicMeanImprovement,
  lossWeights,
  modalityGates,
} from '../orchestrator/curriculum/modality-contribution';

/*
 * Hand-worked losses: B = 2, M = 2.
 *   sample 0: L1 = 1, L2 = 2, Lf = 0.5
 *   sample 1: L1 = L2 = Lf = 1
 * (e^0.5 = 1.648721, e^0.75 = 2.117000, e^-1 = 0.367879)
 */
function handLosses(): BatchLosses {
  return {
    unimodalLosses: [Float32Array.from([1, 1]), Float32Array.from([2, 1])],
    fusedLosses: Float32Array.from([0.5, 1]),
  };
}

const GMR_DEFAULT = { form: 'loss-unimodal-over-fused' as const, logRatioLimit: 5 };

/** Every quantity of eqs. 7-12 for the hand losses, as the curriculum chains them. */
function chain(losses: BatchLosses, numModalities: number) {
  const gmr = geometricMeanRatio(losses, GMR_DEFAULT);
  const gains = fusionGains(losses);
  const omega = lossWeights(losses);
  const hmir = harmonicMeanImprovement(omega, gains, { numModalities, epsilon: 1e-6 });
  const lambda = balanceFactors(gains, { numModalities, lambdaBase: 0.5 });
  const gates = modalityGates({ numModalities, gmr, hmir, lambda, source: 'both' });
  return { gmr, gains, omega, hmir, lambda, gates };
}

describe('GMR (eq. 7)', () => {
  it('is the geometric mean of L_m / L_f in the default reading', () => {
    // sample 0: sqrt((1 / 0.5) * (2 / 0.5)) = sqrt(8) = 2.828427; sample 1: 1
    const gmr = geometricMeanRatio(handLosses(), GMR_DEFAULT);

    expect(gmr[0]).toBeCloseTo(2.828427, 6);
    expect(gmr[1]).toBeCloseTo(1, 12);
  });

  it('is the geometric mean of L_f / L_m in the paper form', () => {
    // sample 0: sqrt(0.5 * 0.25) = sqrt(0.125) = 0.353553
    const gmr = geometricMeanRatio(handLosses(), { form: 'paper', logRatioLimit: 5 });

    expect(gmr[0]).toBeCloseTo(0.353553, 6);
  });

  it('clamps each log ratio so a zero loss cannot blow it up', () => {
    // L1 = 0, L2 = ln 3, Lf = ln 2: log(L1 / Lf) -> -inf, clamped to -5;
    //   log(ln 3 / ln 2) = log(1.584963) = 0.460517; mean (-5 + 0.460517) / 2 = -2.269741
    //   D_G = exp(-2.269741) = 0.103341
    const gmr = geometricMeanRatio(
      {
        unimodalLosses: [Float32Array.from([0]), Float32Array.from([Math.log(3)])],
        fusedLosses: Float32Array.from([Math.log(2)]),
      },
      GMR_DEFAULT,
    );

    expect(gmr[0]).toBeCloseTo(0.103341, 5);
  });

  it('gives 1 when every loss is 0', () => {
    const zeros = {
      unimodalLosses: [Float32Array.from([0]), Float32Array.from([0])],
      fusedLosses: Float32Array.from([0]),
    };

    expect(geometricMeanRatio(zeros, GMR_DEFAULT)[0]).toBe(1);
    expect(geometricMeanRatio(zeros, { form: 'paper', logRatioLimit: 5 })[0]).toBe(1);
  });
});

describe('Gain (eq. 9) and omega (eq. 10)', () => {
  it('computes Gain = exp((L_m - L_f) / L_m)', () => {
    // sample 0: exp(0.5 / 1) = 1.648721, exp(1.5 / 2) = 2.117000; sample 1: exp(0) = 1
    const gains = fusionGains(handLosses());

    expect(gains[0]).toBeCloseTo(1.648721, 6);
    expect(gains[1]).toBeCloseTo(2.117, 6);
    expect(gains[2]).toBe(1);
    expect(gains[3]).toBe(1);
  });

  it('gives Gain 0 for a zero unimodal loss and 1 when all losses are 0', () => {
    // (1e-12 - 0.5) / 1e-12 is a huge negative number: exp of it is 0, not NaN
    const gains = fusionGains({
      unimodalLosses: [Float32Array.from([0, 0])],
      fusedLosses: Float32Array.from([0.5, 0]),
    });

    expect(gains[0]).toBe(0);
    expect(gains[1]).toBe(1);
  });

  it('computes omega = softmax(-L) and sums to 1', () => {
    // sample 0: e^-1 / (e^-1 + e^-2) = 1 / (1 + e^-1) = 1 / 1.367879 = 0.731059
    const omega = lossWeights(handLosses());

    expect(omega[0]).toBeCloseTo(0.731059, 6);
    expect(omega[1]).toBeCloseTo(0.268941, 6);
    expect(omega[2]).toBe(0.5);
    expect(omega[0] + omega[1]).toBeCloseTo(1, 12);
  });
});

describe('HMIR (eq. 8)', () => {
  it('computes M / sum omega (1 + 1 / (Gain + eps))', () => {
    // sample 0: 0.731059 / 1.648721 = 0.443406, 0.268941 / 2.117000 = 0.127039
    //   (omegas sum to 1) -> 2 / (1 + 0.443406 + 0.127039) = 2 / 1.570445 = 1.273522
    // sample 1: 2 / (1 + 1 / 1.000001) = 1.0000005
    const { hmir } = chain(handLosses(), 2);

    expect(hmir[0]).toBeCloseTo(1.273522, 5);
    expect(hmir[1]).toBeCloseTo(1.0000005, 7);
  });
});

describe('lambda (eq. 12) and gate (eq. 11)', () => {
  it('computes lambda from the distance to the mean gain', () => {
    // sample 0: mean gain 1.882861, distance 0.234140, sigmoid 0.558269
    //   lambda = 0.5 + 0.5 * 0.558269 = 0.779134; sample 1: distance 0 -> 0.5 + 0.25 = 0.75
    const { lambda } = chain(handLosses(), 2);

    expect(lambda[0]).toBeCloseTo(0.779134, 6);
    expect(lambda[2]).toBe(0.75);
    lambda.forEach((value) => {
      expect(value).toBeGreaterThanOrEqual(0.75);
      expect(value).toBeLessThan(1);
    });
  });

  it('computes g = sigmoid(lambda D_G + (1 - lambda) D_H)', () => {
    // sample 0: 0.779134 * 2.828427 + 0.220866 * 1.273522 = 2.203717 + 0.281275 = 2.484992
    //   sigmoid -> 0.923084; sample 1: 0.75 * 1 + 0.25 * 1.0000005 -> sigmoid(1) = 0.731059
    const { gates } = chain(handLosses(), 2);

    expect(gates[0]).toBeCloseTo(0.923084, 5);
    expect(gates[2]).toBeCloseTo(0.731059, 6);
    gates.forEach((gate) => {
      expect(gate).toBeGreaterThan(0.5);
      expect(gate).toBeLessThan(1);
    });
  });

  it('gives both modalities of a bimodal sample the same lambda and gate', () => {
    // |Gain_1 - mean| = |Gain_2 - mean| = |Gain_1 - Gain_2| / 2, whatever the losses
    const losses = {
      unimodalLosses: [Float32Array.from([0.1, 3, 0.7]), Float32Array.from([2.5, 0.2, 0.7])],
      fusedLosses: Float32Array.from([0.3, 0.05, 1.4]),
    };
    const { lambda, gates, omega } = chain(losses, 2);

    for (let i = 0; i < 3; i++) {
      expect(lambda[2 * i]).toBe(lambda[2 * i + 1]);
      expect(gates[2 * i]).toBe(gates[2 * i + 1]);
    }
    // the modalities still differ through omega
    expect(omega[0]).not.toBeCloseTo(omega[1], 3);
  });

  it('lets the gates differ with three modalities', () => {
    // L = (1, 2, 0.25), Lf = 0.5: gains e^0.5, e^0.75, e^-1 = (1.648721, 2.117, 0.367879)
    //   mean 1.377867; distances 0.270854, 0.739133, 1.009988
    //   lambda = 0.5 + 0.5 sigmoid(d) = 0.783651, 0.838403, 0.866509
    const losses = {
      unimodalLosses: [Float32Array.from([1]), Float32Array.from([2]), Float32Array.from([0.25])],
      fusedLosses: Float32Array.from([0.5]),
    };
    const { lambda, gates } = chain(losses, 3);

    expect(lambda[0]).toBeCloseTo(0.783651, 5);
    expect(lambda[1]).toBeCloseTo(0.838403, 5);
    expect(lambda[2]).toBeCloseTo(0.866509, 5);
    expect(gates[0]).toBeLessThan(gates[1]);
    expect(gates[1]).toBeLessThan(gates[2]);
  });

  it('uses one signal alone for the Table 5 ablations', () => {
    // sample 0: sigmoid(2.828427) = 0.944193; sigmoid(1.273522) = 0.781345
    const { gmr, hmir, lambda } = chain(handLosses(), 2);
    const fromGmr = modalityGates({ numModalities: 2, gmr, hmir, lambda, source: 'gmr' });
    const fromHmir = modalityGates({ numModalities: 2, gmr, hmir, lambda, source: 'hmir' });

    expect(fromGmr[0]).toBeCloseTo(0.944193, 6);
    expect(fromHmir[0]).toBeCloseTo(0.781345, 5);
  });
});

describe('fused weights omega* (3.4.2) and D_fuse', () => {
  const omega = Float64Array.from([0.731059, 0.268941, 0.5, 0.5]);
  const gates = Float64Array.from([0.923084, 0.923084, 0.6, 0.7]);

  it('scales omega by (1 + mu g) without renormalising by default', () => {
    // sample 0: 0.731059 * 1.923084 = 1.405887, 0.268941 * 1.923084 = 0.517196 (sum 1.923)
    // sample 1: 0.5 * 1.6 = 0.8, 0.5 * 1.7 = 0.85
    const weights = fusedModalityWeights(omega, gates, {
      numModalities: 2,
      threshold: 0.5,
      rate: 1,
      renormalise: false,
    });

    expect(weights[0]).toBeCloseTo(1.405887, 5);
    expect(weights[1]).toBeCloseTo(0.517196, 5);
    expect(weights[2]).toBeCloseTo(0.8, 12);
    expect(weights[3]).toBeCloseTo(0.85, 12);
  });

  it('applies the rate mu', () => {
    // mu = 0.5, sample 1: 0.5 * (1 + 0.3) = 0.65, 0.5 * (1 + 0.35) = 0.675
    const weights = fusedModalityWeights(omega, gates, {
      numModalities: 2,
      threshold: 0.5,
      rate: 0.5,
      renormalise: false,
    });

    expect(weights[2]).toBeCloseTo(0.65, 12);
    expect(weights[3]).toBeCloseTo(0.675, 12);
  });

  it('renormalising cancels equal bimodal gates and returns omega', () => {
    const weights = fusedModalityWeights(omega, gates, {
      numModalities: 2,
      threshold: 0.5,
      rate: 1,
      renormalise: true,
    });

    expect(weights[0]).toBeCloseTo(0.731059, 12);
    expect(weights[1]).toBeCloseTo(0.268941, 12);
    // sample 1 (unequal gates): 0.8 / 1.65 = 0.484848, 0.85 / 1.65 = 0.515152
    expect(weights[2]).toBeCloseTo(0.484848, 6);
  });

  it('drops gates below tau but always keeps the largest', () => {
    // tau = 0.65: sample 1 drops modality 0 (g = 0.6); sample 0 keeps both (0.923 >= 0.65)
    const dropped = fusedModalityWeights(omega, gates, {
      numModalities: 2,
      threshold: 0.65,
      rate: 1,
      renormalise: false,
    });
    expect(dropped[2]).toBe(0);
    expect(dropped[3]).toBeCloseTo(0.85, 12);

    // tau = 0.99 is above every gate: only the largest (ties: all tied) stays
    const strict = fusedModalityWeights(omega, gates, {
      numModalities: 2,
      threshold: 0.99,
      rate: 1,
      renormalise: true,
    });
    expect(strict[0]).toBeCloseTo(0.731059, 12);
    expect(strict[2]).toBe(0);
    expect(strict[3]).toBe(1);
  });

  it('averages the gates into D_fuse', () => {
    // sample 0: 0.923084; sample 1: (0.6 + 0.7) / 2 = 0.65
    const difficulty = fusionDifficulty(gates, 2);

    expect(difficulty[0]).toBeCloseTo(0.923084, 12);
    expect(difficulty[1]).toBeCloseTo(0.65, 12);
  });
});
