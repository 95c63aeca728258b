import type { Logger } from 'pino';
import { ConfigError, InputError } from '../util/errors';
import { componentLogger } from '../util/logger';
import { CurriculumBatch, validateCurriculumBatch } from './curriculum-batch';
import { DynCimOptions, resolveDynCimOptions } from './curriculum-options';
import {
  balanceFactors,
  fusedModalityWeights,
  fusionDifficulty,
  fusionGains,
  geometricMeanRatio,
  harmonicMeanImprovement,
  lossWeights,
  modalityGates,
} from './modality-contribution';
import {
  mirroredScores,
  normalisedSampleWeights,
  paceFraction,
  paceThreshold,
  selfPacedWeights,
} from './pace-schedule';
import {
  MetricTriple,
  VolatilityState,
  VolatilityTracker,
  entropyWeights,
  metricWeights,
  predictionConsistency,
  predictionDeviation,
  predictionStability,
  standardiseMetric,
  taskDifficulty,
} from './sample-difficulty';

export type { CurriculumBatch } from './curriculum-batch';

/** Batch means for logging. Signals are reported as computed, even when a switch keeps them
 * out of the weights; dTask, dFuse and omegaStar are the values actually used. */
export interface CurriculumStats {
  /** Psi_j of eq. 6 for deviation, consistency, stability (0 for a metric switched off). */
  psi: number[];
  /** E_j of eq. 5, same order. */
  volatility: number[];
  /** Mean gate g_m per modality (eq. 11). */
  gate: number[];
  /** Mean omega*_m per modality as handed to the fusion (eq. 13). */
  omegaStar: number[];
  /** Mean lambda_m per modality (eq. 12). */
  lambda: number[];
  /** Mean D_G (eq. 7) and D_H (eq. 8). */
  gmr: number;
  hmir: number;
  /** Mean D_fuse and D_task as used in W (1 when MDC or SDC is off). */
  dFuse: number;
  dTask: number;
  /** eta(t) of eq. 14; Infinity under strategy 'none' (every v = 1). */
  eta: number;
  /** Planned fraction p(t) and the fraction of the batch that got v > 0. */
  targetFraction: number;
  admittedFraction: number;
}

export interface CurriculumOutput {
  sampleWeights: Float32Array; // [B], sums to 1 (eq. 14's v_i W_i, normalised)
  modalityWeights: Float32Array; // [B * M], omega*_{i,m} used by the fusion (eq. 13)
  unimodalLossWeights: Float32Array; // [B * M], delta_{i,m} (eq. 1) for L_task
  stats: CurriculumStats; // batch means for logging: psi[3], gate[M], omega*[M],
  // dFuse, dTask, eta, admittedFraction, lambda[M], gmr, hmir
}

/** What state() returns: everything a resumed run needs to continue identically. */
export interface DynCimCurriculumState {
  format: typeof STATE_FORMAT;
  numSamples: number;
  numModalities: number;
  step: number;
  volatility: VolatilityState;
}

const STATE_FORMAT = 'dyncim-curriculum-state/1';

interface SampleLevel {
  delta: Float64Array;
  taskLoss: Float64Array;
  dTask: Float64Array;
  psi: MetricTriple<number>;
}

interface ModalityLevel {
  gmr: Float64Array;
  hmir: Float64Array;
  lambda: Float64Array;
  gates: Float64Array;
  omegaStar: Float64Array;
  dFuse: Float64Array;
}

interface PaceResult {
  sampleWeights: Float64Array;
  eta: number;
  targetFraction: number;
  admittedFraction: number;
}

function filled(length: number, value: number): Float64Array {
  return new Float64Array(length).fill(value);
}

function mean(values: Float64Array): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

/** Per-modality means of a sample-major [B * M] array. */
function modalityMeans(values: Float64Array, numModalities: number): number[] {
  const sums = new Array<number>(numModalities).fill(0);
  values.forEach((value, at) => (sums[at % numModalities] += value));
  return sums.map((sum) => sum / (values.length / numModalities));
}

function checkCount(name: string, value: number, minimum: number): void {
  if (!Number.isInteger(value) || value < minimum) {
    throw new ConfigError(`curriculum ${name} must be an integer >= ${minimum}, received ${value}`);
  }
}

/**
 * DynCIM's curriculum, kept apart from the model: each training step hands it a batch's
 * detached outputs and gets back per-sample training weights (eq. 14), per-sample modality
 * weights for the fusion (eq. 13) and the delta weights of the unimodal losses (eq. 1).
 * Plain typed-array math: it allocates no tensors.
 */
export class DynCimCurriculum {
  readonly options: DynCimOptions;

  readonly numSamples: number;

  readonly numModalities: number;

  private readonly volatility: VolatilityTracker;

  private steps = 0;

  private readonly log: Logger;

  constructor(options: { numSamples: number; numModalities: number } & Partial<DynCimOptions>) {
    const { numSamples, numModalities, ...curriculumOptions } = options;
    checkCount('numSamples', numSamples, 1);
    checkCount('numModalities', numModalities, 1);

    this.numSamples = numSamples;
    this.numModalities = numModalities;
    this.options = resolveDynCimOptions(curriculumOptions);
    this.volatility = new VolatilityTracker({
      numSamples,
      decay: this.options.volatilityDecay,
    });

    this.log = componentLogger('curriculum');
    this.log.info(
      { numSamples, numModalities, options: this.options },
      `curriculum ready: strategy ${this.options.strategy}, ` +
        `SDC ${this.options.sampleCurriculum ? 'on' : 'off'}, ` +
        `MDC ${this.options.modalityCurriculum ? 'on' : 'off'}`,
    );
  }

  /** Weights for one training batch; updates the volatility EMA and the last-seen table. */
  step(batch: CurriculumBatch): CurriculumOutput {
    validateCurriculumBatch(batch, {
      numSamples: this.numSamples,
      numModalities: this.numModalities,
    });

    const sample = this.sampleLevel(batch);
    const modality = this.modalityLevel(batch);
    const pace = this.paceLevel(batch, sample, modality);
    this.steps++;

    const output: CurriculumOutput = {
      sampleWeights: Float32Array.from(pace.sampleWeights),
      modalityWeights: Float32Array.from(modality.omegaStar),
      unimodalLossWeights: Float32Array.from(sample.delta),
      stats: this.statistics(sample, modality, pace),
    };
    this.log.debug({ step: this.steps, stats: output.stats }, 'curriculum step');
    return output;
  }

  /** Eqs. 1-6: delta, the task loss, the volatility update, Psi and D_task. */
  private sampleLevel(batch: CurriculumBatch): SampleLevel {
    const options = this.options;
    const delta = entropyWeights(batch);
    const taskLoss = predictionDeviation(batch, delta);

    const raw: MetricTriple<Float64Array> = [
      taskLoss,
      predictionConsistency(batch),
      predictionStability(batch, {
        form: options.stabilityForm,
        probabilityFloor: options.probabilityFloor,
      }),
    ];
    const signs = [options.deviationSign, options.consistencySign, options.stabilitySign];
    const standardised = raw.map((values, j) => standardiseMetric(values, signs[j]));

    this.volatility.update(batch.sampleIds, standardised as MetricTriple<Float64Array>);
    const psi = metricWeights(this.volatility.current(), options.sampleMetrics);
    const dTask = options.sampleCurriculum
      ? taskDifficulty(standardised as MetricTriple<Float64Array>, psi)
      : filled(taskLoss.length, 1);

    return { delta, taskLoss, dTask, psi };
  }

  /** Eqs. 7-12 and section 3.4.2: GMR, HMIR, lambda, gates, omega*, D_fuse. */
  private modalityLevel(batch: CurriculumBatch): ModalityLevel {
    const options = this.options;
    const numModalities = this.numModalities;
    const batchSize = batch.labels.length;

    const gmr = geometricMeanRatio(batch, {
      form: options.gmrForm,
      logRatioLimit: options.gmrLogRatioLimit,
    });
    const gains = fusionGains(batch);
    const omega = lossWeights(batch);
    const hmir = harmonicMeanImprovement(omega, gains, {
      numModalities,
      epsilon: options.hmirEpsilon,
    });
    const lambda = balanceFactors(gains, { numModalities, lambdaBase: options.lambdaBase });
    const gates = modalityGates({ numModalities, gmr, hmir, lambda, source: options.gateSource });

    const gated = options.modalityCurriculum && options.modalityWeighting === 'gate';
    const omegaStar = gated
      ? fusedModalityWeights(omega, gates, {
          numModalities,
          threshold: options.gateThreshold,
          rate: options.gateRate,
          renormalise: options.renormaliseFusedWeights,
        })
      : filled(batchSize * numModalities, 1 / numModalities);
    const dFuse = options.modalityCurriculum
      ? fusionDifficulty(gates, numModalities)
      : filled(batchSize, 1);

    return { gmr, hmir, lambda, gates, omegaStar, dFuse };
  }

  /** Eq. 14: W, the pace threshold eta(t), v and the normalised sample weights. */
  private paceLevel(
    batch: CurriculumBatch,
    sample: SampleLevel,
    modality: ModalityLevel,
  ): PaceResult {
    const options = this.options;
    const batchSize = batch.labels.length;

    if (options.strategy === 'none') {
      return {
        sampleWeights: filled(batchSize, 1 / batchSize),
        eta: Infinity,
        targetFraction: 1,
        admittedFraction: 1,
      };
    }

    const difficultyWeights =
      options.strategy === 'dyncim'
        ? sample.dTask.map((dTask, i) => dTask * modality.dFuse[i])
        : filled(batchSize, 1);
    const scores =
      options.strategy === 'hard-to-easy'
        ? mirroredScores(sample.taskLoss)
        : difficultyWeights.map((weight, i) => weight * sample.taskLoss[i]);

    const targetFraction = paceFraction({
      progress: batch.progress,
      startFraction: options.paceStartFraction,
      rampEnd: options.paceRampEnd,
    });
    const eta = paceThreshold(scores, {
      fraction: targetFraction,
      fullAdmissionMargin: options.fullAdmissionMargin,
    });
    const paceWeights = selfPacedWeights(scores, eta);
    const admitted = paceWeights.filter((v) => v > 0).length;

    return {
      sampleWeights: normalisedSampleWeights(paceWeights, difficultyWeights),
      eta,
      targetFraction,
      admittedFraction: admitted / batchSize,
    };
  }

  private statistics(
    sample: SampleLevel,
    modality: ModalityLevel,
    pace: PaceResult,
  ): CurriculumStats {
    const numModalities = this.numModalities;

    return {
      psi: [...sample.psi],
      volatility: this.volatility.current(),
      gate: modalityMeans(modality.gates, numModalities),
      omegaStar: modalityMeans(modality.omegaStar, numModalities),
      lambda: modalityMeans(modality.lambda, numModalities),
      gmr: mean(modality.gmr),
      hmir: mean(modality.hmir),
      dFuse: mean(modality.dFuse),
      dTask: mean(sample.dTask),
      eta: pace.eta,
      targetFraction: pace.targetFraction,
      admittedFraction: pace.admittedFraction,
    };
  }

  /** Number of steps taken (restored by loadState). */
  stepCount(): number {
    return this.steps;
  }

  /** A JSON-serialisable snapshot for checkpoints: volatility EMA, last-seen table, steps. */
  state(): DynCimCurriculumState {
    return {
      format: STATE_FORMAT,
      numSamples: this.numSamples,
      numModalities: this.numModalities,
      step: this.steps,
      volatility: this.volatility.state(),
    };
  }

  /** Restores a state() snapshot; throws InputError naming the field that does not match. */
  loadState(state: object): void {
    const snapshot = state as Partial<DynCimCurriculumState>;
    const expected: Record<string, unknown> = {
      format: STATE_FORMAT,
      numSamples: this.numSamples,
      numModalities: this.numModalities,
    };

    for (const [field, value] of Object.entries(expected)) {
      const received = snapshot[field as keyof DynCimCurriculumState];
      if (received !== value) {
        throw new InputError(
          `curriculum state field ${field} is ${JSON.stringify(received)}, expected ` +
            `${JSON.stringify(value)} (a checkpoint from another dataset or model?)`,
        );
      }
    }

    if (!Number.isInteger(snapshot.step) || (snapshot.step as number) < 0) {
      throw new InputError(
        `curriculum state field step is ${JSON.stringify(snapshot.step)}, ` +
          'expected an integer >= 0',
      );
    }
    if (typeof snapshot.volatility !== 'object' || snapshot.volatility === null) {
      throw new InputError('curriculum state field volatility is missing');
    }

    this.volatility.loadState(snapshot.volatility);
    this.steps = snapshot.step as number;
    this.log.info({ step: this.steps }, 'curriculum state restored');
  }
}
