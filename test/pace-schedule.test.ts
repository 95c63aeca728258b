import {
  admittedCount,
  mirroredScores,
  normalisedSampleWeights,
  paceFraction,
  paceThreshold,
  selfPacedWeights,
} from '../orchestrator/curriculum/pace-schedule';

const RAMP = { startFraction: 0.5, rampEnd: 0.5 };

describe('pace fraction p(t)', () => {
  it('rises linearly from p0 to 1 at the ramp end, then stays at 1', () => {
    // p = 0.5 + 0.5 * min(t / 0.5, 1)
    expect(paceFraction({ progress: 0, ...RAMP })).toBe(0.5);
    expect(paceFraction({ progress: 0.25, ...RAMP })).toBe(0.75);
    expect(paceFraction({ progress: 0.5, ...RAMP })).toBe(1);
    expect(paceFraction({ progress: 0.9, ...RAMP })).toBe(1);
  });

  it('admits everything from the start when the ramp end is 0', () => {
    expect(paceFraction({ progress: 0, startFraction: 0.3, rampEnd: 0 })).toBe(1);
  });
});

describe('admitted count', () => {
  it('rounds p B up, admits at least one and tolerates float noise', () => {
    expect(admittedCount(0.5, 4)).toBe(2);
    expect(admittedCount(0.5, 3)).toBe(2);
    expect(admittedCount(0.01, 3)).toBe(1);
    // 0.55 * 100 = 55.00000000000001 in floating point: still 55, not 56
    expect(admittedCount(0.55, 100)).toBe(55);
    expect(admittedCount(1, 5)).toBe(5);
  });
});

describe('eta and v (eq. 14 closed form)', () => {
  const scores = Float64Array.from([3, 1, 4, 2]);
  const options = { fraction: 0.5, fullAdmissionMargin: 1.1 };

  it('admits the easiest half at p = 0.5', () => {
    // sorted 1, 2, 3, 4; admit 2 -> 2 eta = 3 (the first score above) -> eta = 1.5
    // v = 1 - s / 3: (3 -> 0, 1 -> 0.666667, 4 -> 0 (clipped), 2 -> 0.333333)
    const eta = paceThreshold(scores, options);
    const v = selfPacedWeights(scores, eta);

    expect(eta).toBe(1.5);
    expect(v[0]).toBe(0);
    expect(v[1]).toBeCloseTo(2 / 3, 12);
    expect(v[2]).toBe(0);
    expect(v[3]).toBeCloseTo(1 / 3, 12);
    expect(v.filter((value) => value > 0).length / v.length).toBe(0.5);
  });

  it('admits every sample at p = 1, the hardest with v = 1 - 1/margin', () => {
    // eta = 1.1 * 4 / 2 = 2.2; v = 1 - s / 4.4: 0.318182, 0.772727, 0.090909, 0.545455
    const eta = paceThreshold(scores, { ...options, fraction: 1 });
    const v = selfPacedWeights(scores, eta);

    expect(eta).toBeCloseTo(2.2, 12);
    expect(v[0]).toBeCloseTo(0.318182, 6);
    expect(v[1]).toBeCloseTo(0.772727, 6);
    expect(v[2]).toBeCloseTo(0.090909, 6);
    expect(v[3]).toBeCloseTo(0.545455, 6);
  });

  it('admits every sample tied with the last admitted one', () => {
    // 1, 2, 2, 3 at p = 0.5: the second and third tie at 2 -> 2 eta = 3, three admitted
    const tied = Float64Array.from([2, 1, 3, 2]);
    const v = selfPacedWeights(tied, paceThreshold(tied, options));

    expect(Array.from(v).map((value) => value > 0)).toEqual([true, true, false, true]);
  });

  it('keeps eta positive and v = 1 when every score is 0', () => {
    const zeros = Float64Array.from([0, 0, 0]);
    const eta = paceThreshold(zeros, options);

    expect(eta).toBeGreaterThan(0);
    expect(Array.from(selfPacedWeights(zeros, eta))).toEqual([1, 1, 1]);
  });
});

describe('normalised sample weights', () => {
  it('divides v W by its sum', () => {
    // v W = (0.5 * 0.2, 1 * 0.3, 0 * 0.9) = (0.1, 0.3, 0) -> (0.25, 0.75, 0)
    const weights = normalisedSampleWeights(
      Float64Array.from([0.5, 1, 0]),
      Float64Array.from([0.2, 0.3, 0.9]),
    );

    expect(weights[0]).toBeCloseTo(0.25, 12);
    expect(weights[1]).toBeCloseTo(0.75, 12);
    expect(weights[2]).toBe(0);
  });

  it('falls back to equal weights over admitted samples when every v W is 0', () => {
    const weights = normalisedSampleWeights(
      Float64Array.from([0.5, 1, 0]),
      Float64Array.from([0, 0, 0]),
    );

    expect(Array.from(weights)).toEqual([0.5, 0.5, 0]);
  });

  it('falls back to equal weights over all when nothing is admitted', () => {
    const weights = normalisedSampleWeights(Float64Array.from([0, 0]), Float64Array.from([1, 1]));

    expect(Array.from(weights)).toEqual([0.5, 0.5]);
  });
});

describe('hard-to-easy scores', () => {
  it('mirrors the losses so the hardest is admitted first', () => {
    // L = (1, 4, 2, 3): L_max + L_min = 5 -> (4, 1, 3, 2)
    const mirrored = mirroredScores(Float64Array.from([1, 4, 2, 3]));
    expect(Array.from(mirrored)).toEqual([4, 1, 3, 2]);

    // p = 0.5 admits the two hardest (losses 4 and 3)
    const v = selfPacedWeights(
      mirrored,
      paceThreshold(mirrored, {
        fraction: 0.5,
        fullAdmissionMargin: 1.1,
      }),
    );
    expect(Array.from(v).map((value) => value > 0)).toEqual([false, true, false, true]);
  });
});
