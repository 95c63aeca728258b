import { FeatureSet, SplitName } from '../../orchestrator/train/feature-set';
import { SeededRandom } from '../../orchestrator/util/rng';

/**
 * Gaussian class clusters for two modalities of different widths and strengths: 'strong' separates
 * classes well, 'weak' barely, so fusion and per-modality accuracy differ in a known direction.
 */
export function syntheticFeatureSet(options: {
  samples?: number;
  classes?: number;
  seed?: number;
  strongWidth?: number;
  weakWidth?: number;
  strongSeparation?: number;
  weakSeparation?: number;
}): FeatureSet {
  const samples = options.samples ?? 600;
  const classes = options.classes ?? 4;
  const random = new SeededRandom(options.seed ?? 1);
  const specs = [
    {
      name: 'strong',
      width: options.strongWidth ?? 12,
      separation: options.strongSeparation ?? 1.5,
    },
    { name: 'weak', width: options.weakWidth ?? 7, separation: options.weakSeparation ?? 0.6 },
  ];

  const centres = specs.map((spec) =>
    Array.from({ length: classes }, () =>
      Float32Array.from({ length: spec.width }, () => random.normal() * spec.separation),
    ),
  );

  const labels = Int32Array.from({ length: samples }, (_, i) => i % classes);
  const splits: SplitName[] = Array.from({ length: samples }, (_, i) =>
    i % 10 < 7 ? 'train' : i % 10 < 8 ? 'val' : 'test',
  );
  const modalities = specs.map((spec, m) => {
    const data = new Float32Array(samples * spec.width);
    for (let i = 0; i < samples; i++) {
      for (let j = 0; j < spec.width; j++) {
        data[i * spec.width + j] = centres[m][labels[i]][j] + random.normal();
      }
    }
    return { name: spec.name, width: spec.width, encoderSha256: `sha-${spec.name}`, data };
  });

  return {
    classNames: Array.from({ length: classes }, (_, k) => `c${k}`),
    labels,
    splits,
    modalities,
  };
}
