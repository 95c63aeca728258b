import type { CurriculumBatch } from '../../orchestrator/curriculum/curriculum-batch';

/**
 * The hand-worked curriculum batch both curriculum test files compute against:
 * B = 2, M = 2, K = 3 (ln 2 = 0.693147, ln 3 = 1.098612, ln 4 = 1.386294).
 *   sample 0, label 0: p1 = [1, 0, 0], p2 = [1/3, 1/3, 1/3], pf = [0.5, 0.25, 0.25]
 *                      L1 = 0, L2 = ln 3, Lf = ln 2
 *   sample 1, label 2: p1 = [0.5, 0.25, 0.25], p2 = [0.25, 0.25, 0.5], pf = [0.2, 0.2, 0.6]
 *                      L1 = ln 4, L2 = ln 2, Lf = -ln 0.6 = 0.510826
 * Inputs are float32, so expectations hold to about 1e-7.
 */
export function handBatch(progress = 0): CurriculumBatch {
  return {
    sampleIds: Int32Array.from([0, 1]),
    labels: Int32Array.from([0, 2]),
    unimodalProbs: [
      Float32Array.from([1, 0, 0, 0.5, 0.25, 0.25]),
      Float32Array.from([1 / 3, 1 / 3, 1 / 3, 0.25, 0.25, 0.5]),
    ],
    unimodalLosses: [
      Float32Array.from([0, Math.log(4)]),
      Float32Array.from([Math.log(3), Math.log(2)]),
    ],
    fusedProbs: Float32Array.from([0.5, 0.25, 0.25, 0.2, 0.2, 0.6]),
    fusedLosses: Float32Array.from([Math.log(2), -Math.log(0.6)]),
    numClasses: 3,
    progress,
  };
}
