import * as path from 'path';
import { writeFileAtomic, writeFolderAtomic, writeJsonAtomic } from '../util/atomic';
import { ConfigError } from '../util/errors';
import { componentLogger } from '../util/logger';
import { FeatureSet, selectModalities } from './feature-set';
import { TrainConfig, TrainSummary, trainOnFeatures } from './train-run';

/**
 * Runs several methods over several seeds on the same cached features and reports test
 * accuracy and macro-F1 as mean and standard deviation, with training time.
 */

/** 'dyncim', 'concat', or 'unimodal:<modality>'. */
export type MethodSpec = string;

export interface ComparisonRow {
  method: MethodSpec;
  seeds: number[];
  accuracy: { mean: number; std: number; values: number[] };
  macroF1: { mean: number; std: number; values: number[] };
  modalityAccuracy: Record<string, number>;
  trainSeconds: { mean: number; std: number };
}

export interface Comparison {
  rows: ComparisonRow[];
  /** One per method and seed; `runDir` and `checkpoint` are relative to the comparison folder. */
  runs: Array<TrainSummary & { runDir: string; spec: MethodSpec }>;
}

/** Turns a method spec into the config fields it sets. */
export function configForSpec(spec: MethodSpec): Partial<TrainConfig> {
  if (spec === 'dyncim' || spec === 'concat') return { method: spec };

  const match = /^unimodal:(\w[\w-]*)$/.exec(spec);
  if (match) return { method: 'unimodal', modalities: [match[1]] };
  throw new ConfigError(`unknown method '${spec}'; expected dyncim, concat or unimodal:<modality>`);
}

/** Sample mean and (n - 1) standard deviation; 0 spread for a single value. */
export function meanAndSpread(values: number[]): { mean: number; std: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  if (values.length < 2) return { mean, std: 0 };
  const variance = values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / (values.length - 1);
  return { mean, std: Math.sqrt(variance) };
}

function rowFor(spec: MethodSpec, summaries: TrainSummary[]): ComparisonRow {
  const accuracies = summaries.map((s) => s.test.accuracy);
  const f1s = summaries.map((s) => s.test.macroF1);
  const modalityAccuracy: Record<string, number> = {};
  for (const name of summaries[0].modalities) {
    modalityAccuracy[name] = meanAndSpread(
      summaries.map((s) => s.test.modalityAccuracy[name]),
    ).mean;
  }

  return {
    method: spec,
    seeds: summaries.map((s) => s.seed),
    accuracy: { ...meanAndSpread(accuracies), values: accuracies },
    macroF1: { ...meanAndSpread(f1s), values: f1s },
    modalityAccuracy,
    trainSeconds: meanAndSpread(summaries.map((s) => s.trainSeconds)),
  };
}

function percent(value: number): string {
  return (100 * value).toFixed(2);
}

/** 'mean ± std' in percent; one seed has no spread to show. */
function spread(value: { mean: number; std: number }, seeds: number): string {
  return seeds < 2 ? percent(value.mean) : `${percent(value.mean)} ± ${percent(value.std)}`;
}

/** A Markdown table of the comparison. */
export function comparisonTable(comparison: Comparison): string {
  const lines = [
    '| method | test accuracy % | test macro-F1 % | per-modality accuracy % | train s | seeds |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const row of comparison.rows) {
    const modalities = Object.entries(row.modalityAccuracy)
      .map(([name, value]) => `${name} ${percent(value)}`)
      .join(', ');
    lines.push(
      `| ${row.method} | ${spread(row.accuracy, row.seeds.length)} ` +
        `| ${spread(row.macroF1, row.seeds.length)} | ${modalities} ` +
        `| ${row.trainSeconds.mean.toFixed(1)} | ${row.seeds.join(',')} |`,
    );
  }
  return lines.join('\n') + '\n';
}

/** Trains every method with every seed; each run gets `<outDir>/<method>-seed<seed>/`. */
export async function compareMethods(options: {
  features: FeatureSet;
  outDir: string;
  methods: MethodSpec[];
  seeds: number[];
  config: Partial<TrainConfig>;
}): Promise<Comparison> {
  const log = componentLogger('compare');
  const repeated = options.methods.filter((spec, i) => options.methods.indexOf(spec) !== i);
  if (repeated.length > 0) throw new ConfigError(`methods listed twice: ${repeated.join(', ')}`);
  const specs = options.methods.map((spec) => ({ spec, fields: configForSpec(spec) }));
  for (const { fields } of specs) {
    if (fields.modalities) selectModalities(options.features, fields.modalities);
  }
  const comparison: Comparison = { rows: [], runs: [] };

  // built aside and swapped in whole: a failed comparison leaves an earlier one untouched
  await writeFolderAtomic(
    options.outDir,
    async (workDir) => {
      for (const { spec, fields } of specs) {
        const summaries: TrainSummary[] = [];
        for (const seed of options.seeds) {
          const name = `${spec.replace(':', '-')}-seed${seed}`;
          log.info({ method: spec, seed, runDir: path.join(options.outDir, name) }, 'run started');
          const { summary } = await trainOnFeatures({
            features: options.features,
            runDir: path.join(workDir, name),
            config: { ...options.config, ...fields, seed },
          });
          // paths relative to the comparison folder, so it stays valid wherever it is moved
          const checkpoint = path.join(name, 'checkpoints', 'best.json');
          summaries.push(summary);
          comparison.runs.push({ ...summary, checkpoint, runDir: name, spec });
        }
        comparison.rows.push(rowFor(spec, summaries));
      }

      writeJsonAtomic(path.join(workDir, 'comparison.json'), comparison);
      writeFileAtomic(path.join(workDir, 'comparison.md'), comparisonTable(comparison));
    },
    { marker: 'comparison.json' },
  );
  return comparison;
}
