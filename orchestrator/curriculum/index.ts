/** The DynCIM curriculum: what the trainer and the CLI import. */
export { DynCimCurriculum } from './dyncim-curriculum';
export type {
  CurriculumBatch,
  CurriculumOutput,
  CurriculumStats,
  DynCimCurriculumState,
} from './dyncim-curriculum';
export { validateCurriculumBatch } from './curriculum-batch';
export { DEFAULT_DYNCIM_OPTIONS, SAMPLE_METRICS, resolveDynCimOptions } from './curriculum-options';
export type {
  CurriculumStrategy,
  DynCimOptions,
  GateSource,
  GmrForm,
  ModalityWeighting,
  SampleMetric,
  StabilityForm,
} from './curriculum-options';
