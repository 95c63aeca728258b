import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FusionHead, HeadKind } from '../../orchestrator/model/fusion-head';
import { SeededRandom } from '../../orchestrator/util/rng';

/**
 * Shared fixtures for the export tests: small heads with random weights over two modalities of
 * different widths, random feature rows, and throwaway folders.
 */

export const CLASS_NAMES = ['zero', 'one', 'two', 'three'];
export const AUDIO_WIDTH = 7;
export const IMAGE_WIDTH = 5;
export const HIDDEN_WIDTH = 6;

/** A head over audio (width 7) and image (width 5), K = 4, with uneven modality weights. */
export function randomHead(kind: HeadKind, seed = 11): FusionHead {
  const head = FusionHead.create({
    kind,
    modalities: [
      { name: 'audio', featureWidth: AUDIO_WIDTH, encoderSha256: 'a'.repeat(64) },
      { name: 'image', featureWidth: IMAGE_WIDTH },
    ],
    classNames: CLASS_NAMES,
    hiddenWidth: HIDDEN_WIDTH,
    seed,
  });
  head.inferenceModalityWeights = Float32Array.of(0.35, 1.65);
  return head;
}

/** Normal random rows [rows, width], row-major. */
export function randomRows(random: SeededRandom, rows: number, width: number): Float32Array {
  const values = new Float32Array(rows * width);
  for (let i = 0; i < values.length; i++) values[i] = random.normal();
  return values;
}

/** A fresh temporary folder; remove it with removeFolder. */
export function makeTemporaryFolder(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `dyncim-${prefix}-`));
}

export function removeFolder(folder: string): void {
  fs.rmSync(folder, { recursive: true, force: true });
}

/** Largest absolute elementwise difference of two equally long arrays. */
export function maxAbsDifference(left: ArrayLike<number>, right: ArrayLike<number>): number {
  expect(left.length).toBe(right.length);
  let largest = 0;
  for (let i = 0; i < left.length; i++) largest = Math.max(largest, Math.abs(left[i] - right[i]));
  return largest;
}

/** Index of the largest value of each row of a row-major [rows, classes] array. */
export function argmaxRows(values: ArrayLike<number>, classes: number): number[] {
  const rows = values.length / classes;
  return Array.from({ length: rows }, (_, row) => {
    let best = 0;
    for (let k = 1; k < classes; k++) {
      if (values[row * classes + k] > values[row * classes + best]) best = k;
    }
    return best;
  });
}
