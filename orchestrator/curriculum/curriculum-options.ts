import { ConfigError } from '../util/errors';

/**
 * Options of the DynCIM curriculum. Every point where the paper is unclear or contradicts
 * itself is a named option here; the defaults follow the readings in docs/method.md, and each
 * option's comment says which value gives the literal paper form.
 */

/** The three sample-level difficulty metrics of section 3.2, in the order used everywhere. */
export type SampleMetric = 'deviation' | 'consistency' | 'stability';

export const SAMPLE_METRICS: readonly SampleMetric[] = ['deviation', 'consistency', 'stability'];

/** Eq. 3: average over the wrong classes (default) or the printed sum. */
export type StabilityForm = 'mean-clamped' | 'paper-sum';

/** Eq. 7: geometric mean of L_m / L_f in log space (default) or the printed L_f / L_m. */
export type GmrForm = 'loss-unimodal-over-fused' | 'paper';

/** Which modality-level signal drives the gate of eq. 11 (Table 5). */
export type GateSource = 'both' | 'gmr' | 'hmir';

/** How the fusion weights its modalities (Table 6): the gated omega* or uniform 1/M. */
export type ModalityWeighting = 'gate' | 'uniform';

/** Learning strategies compared in the paper's Fig. 6. */
export type CurriculumStrategy = 'dyncim' | 'none' | 'easy-to-hard' | 'hard-to-easy';

export interface DynCimOptions {
  /** Sample-level curriculum (SDC, Table 3). false: D_task = 1. Default true. */
  sampleCurriculum: boolean;
  /** Metrics that enter D_task (Table 4). Default all three. */
  sampleMetrics: SampleMetric[];
  /** Eq. 3 form. Default 'mean-clamped'; 'paper-sum' is the printed form. */
  stabilityForm: StabilityForm;
  /** Floor for probabilities inside the logs of eq. 3 (both forms). Default 1e-6. */
  probabilityFloor: number;
  /** Eq. 4 sign s_L of the deviation. Default +1; the paper prints -1. */
  deviationSign: number;
  /** Eq. 4 sign s_C of the consistency. Default +1 (as printed). */
  consistencySign: number;
  /** Eq. 4 sign s_S of the stability. Default +1 (as printed). */
  stabilitySign: number;
  /** Eq. 5 smoothing factor gamma of the volatility EMA. Default 0.995 (the paper's best). */
  volatilityDecay: number;

  /** Modality-level curriculum (MDC, Table 3). false: D_fuse = 1, uniform omega*. */
  modalityCurriculum: boolean;
  /** Eq. 7 form. Default 'loss-unimodal-over-fused'; 'paper' is the printed ratio. */
  gmrForm: GmrForm;
  /** Bound on |log(L_m / L_f)| in the default GMR form. Default 5. */
  gmrLogRatioLimit: number;
  /** Eq. 8 epsilon. Default 1e-6 (as printed). */
  hmirEpsilon: number;
  /** Eq. 12 lambda_0. Default 0.5 (as printed), so lambda lies in [0.75, 1). */
  lambdaBase: number;
  /** Gate source (Table 5). Default 'both' (eq. 11). */
  gateSource: GateSource;
  /** Fusion weighting (Table 6). Default 'gate'. */
  modalityWeighting: ModalityWeighting;
  /** tau: modalities whose gate is below it leave the active set. Default 0.5 (keeps all). */
  gateThreshold: number;
  /** mu in omega* = omega (1 + mu g). Default 1 (the printed formula). */
  gateRate: number;
  /** Renormalise omega* to sum to 1 over the active set. Default false (as printed). */
  renormaliseFusedWeights: boolean;

  /** Learning strategy (Fig. 6). Default 'dyncim'. */
  strategy: CurriculumStrategy;
  /** p0: fraction of each batch admitted (v > 0) at the start of training. Default 0.5. */
  paceStartFraction: number;
  /** Fraction of training after which every sample is admitted. Default 0.5. */
  paceRampEnd: number;
  /** Once all are admitted, eta = margin * max(W L) / 2, so the hardest gets v > 0.
   * Default 1.1. */
  fullAdmissionMargin: number;
}

export const DEFAULT_DYNCIM_OPTIONS: Readonly<DynCimOptions> = Object.freeze({
  sampleCurriculum: true,
  // frozen too, so no caller can change the defaults of later runs through a shared array
  sampleMetrics: Object.freeze(['deviation', 'consistency', 'stability']) as SampleMetric[],
  stabilityForm: 'mean-clamped' as StabilityForm,
  probabilityFloor: 1e-6,
  deviationSign: 1,
  consistencySign: 1,
  stabilitySign: 1,
  volatilityDecay: 0.995,

  modalityCurriculum: true,
  gmrForm: 'loss-unimodal-over-fused' as GmrForm,
  gmrLogRatioLimit: 5,
  hmirEpsilon: 1e-6,
  lambdaBase: 0.5,
  gateSource: 'both' as GateSource,
  modalityWeighting: 'gate' as ModalityWeighting,
  gateThreshold: 0.5,
  gateRate: 1,
  renormaliseFusedWeights: false,

  strategy: 'dyncim' as CurriculumStrategy,
  paceStartFraction: 0.5,
  paceRampEnd: 0.5,
  fullAdmissionMargin: 1.1,
});

interface NumberRange {
  low: number;
  high: number;
  lowOpen?: boolean;
  highOpen?: boolean;
}

const NUMBER_RANGES: Partial<Record<keyof DynCimOptions, NumberRange>> = {
  probabilityFloor: { low: 0, high: 0.01, lowOpen: true },
  volatilityDecay: { low: 0, high: 1, highOpen: true },
  gmrLogRatioLimit: { low: 0, high: 50, lowOpen: true },
  hmirEpsilon: { low: 0, high: 1, lowOpen: true, highOpen: true },
  lambdaBase: { low: 0, high: 0.5 },
  gateThreshold: { low: 0, high: 1 },
  gateRate: { low: 0, high: 100 },
  paceStartFraction: { low: 0, high: 1, lowOpen: true },
  paceRampEnd: { low: 0, high: 1 },
  fullAdmissionMargin: { low: 1, high: 100, lowOpen: true },
};

const CHOICES: Partial<Record<keyof DynCimOptions, readonly string[]>> = {
  stabilityForm: ['mean-clamped', 'paper-sum'],
  gmrForm: ['loss-unimodal-over-fused', 'paper'],
  gateSource: ['both', 'gmr', 'hmir'],
  modalityWeighting: ['gate', 'uniform'],
  strategy: ['dyncim', 'none', 'easy-to-hard', 'hard-to-easy'],
};

const SIGN_OPTIONS: readonly (keyof DynCimOptions)[] = [
  'deviationSign',
  'consistencySign',
  'stabilitySign',
];

const BOOLEAN_OPTIONS: readonly (keyof DynCimOptions)[] = [
  'sampleCurriculum',
  'modalityCurriculum',
  'renormaliseFusedWeights',
];

function describeRange(range: NumberRange): string {
  return `${range.lowOpen ? '(' : '['}${range.low}, ${range.high}${range.highOpen ? ')' : ']'}`;
}

function isInRange(value: number, range: NumberRange): boolean {
  const aboveLow = range.lowOpen ? value > range.low : value >= range.low;
  const belowHigh = range.highOpen ? value < range.high : value <= range.high;
  return aboveLow && belowHigh;
}

function checkNumber(name: string, value: unknown, range: NumberRange): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || !isInRange(value, range)) {
    throw new ConfigError(
      `curriculum option ${name} must be a number in ${describeRange(range)}, ` +
        `received ${JSON.stringify(value)}`,
    );
  }
}

function checkChoice(name: string, value: unknown, choices: readonly string[]): void {
  if (typeof value !== 'string' || !choices.includes(value)) {
    throw new ConfigError(
      `curriculum option ${name} must be one of ${choices.map((c) => `'${c}'`).join(', ')}, ` +
        `received ${JSON.stringify(value)}`,
    );
  }
}

function checkSign(name: string, value: unknown): void {
  if (value !== 1 && value !== -1) {
    throw new ConfigError(
      `curriculum option ${name} must be 1 or -1, received ${JSON.stringify(value)}`,
    );
  }
}

function checkBoolean(name: string, value: unknown): void {
  if (typeof value !== 'boolean') {
    throw new ConfigError(
      `curriculum option ${name} must be true or false, received ${JSON.stringify(value)}`,
    );
  }
}

function checkSampleMetrics(value: unknown): void {
  const valid =
    Array.isArray(value) &&
    value.length > 0 &&
    value.every((metric) => SAMPLE_METRICS.includes(metric)) &&
    new Set(value).size === value.length;

  if (!valid) {
    throw new ConfigError(
      'curriculum option sampleMetrics must be a non-empty list of distinct names from ' +
        `'deviation', 'consistency', 'stability', received ${JSON.stringify(value)}`,
    );
  }
}

function rejectUnknownKeys(partial: object): void {
  // a misspelt option would otherwise silently run the default
  for (const key of Object.keys(partial)) {
    if (!(key in DEFAULT_DYNCIM_OPTIONS)) {
      throw new ConfigError(
        `unknown curriculum option ${key}; known options: ` +
          Object.keys(DEFAULT_DYNCIM_OPTIONS).join(', '),
      );
    }
  }
}

function validateOptions(options: DynCimOptions): void {
  for (const [name, range] of Object.entries(NUMBER_RANGES)) {
    checkNumber(name, options[name as keyof DynCimOptions], range as NumberRange);
  }

  for (const [name, choices] of Object.entries(CHOICES)) {
    checkChoice(name, options[name as keyof DynCimOptions], choices as readonly string[]);
  }

  SIGN_OPTIONS.forEach((name) => checkSign(name, options[name]));
  BOOLEAN_OPTIONS.forEach((name) => checkBoolean(name, options[name]));
  checkSampleMetrics(options.sampleMetrics);
}

/**
 * Fills unset options with their defaults and checks every value; throws a ConfigError that
 * names the option and its allowed range. Keys set to undefined take the default.
 */
export function resolveDynCimOptions(partial: Partial<DynCimOptions> = {}): DynCimOptions {
  rejectUnknownKeys(partial);

  const defined = Object.fromEntries(
    Object.entries(partial).filter(([, value]) => value !== undefined),
  ) as Partial<DynCimOptions>;
  const metrics = defined.sampleMetrics ?? DEFAULT_DYNCIM_OPTIONS.sampleMetrics;
  const options: DynCimOptions = {
    ...DEFAULT_DYNCIM_OPTIONS,
    ...defined,
    sampleMetrics: Array.isArray(metrics) ? [...metrics] : metrics,
  };

  validateOptions(options);
  return options;
}
