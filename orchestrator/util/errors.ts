/**
 * Error classes for the toolkit. Every error that reaches a user names the file or option at
 * fault and says what was expected, so the person running a job can act on it.
 */

/** Bad input data: a corrupt or missing file, a wrong shape, a NaN. */
export class InputError extends Error {
  /** The file or folder at fault, when there is one. */
  readonly path?: string;

  constructor(message: string, path?: string) {
    super(path ? `${path}: ${message}` : message);
    this.name = 'InputError';
    this.path = path;
  }
}

/** Tensor or array widths that do not match what a model or cache expects. */
export class ShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShapeError';
  }
}

/** An option or config value that is out of range or of the wrong kind. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** A runtime dependency (CUDA, Python, espeak-ng, a backend) that is missing or fails to load. */
export class DependencyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DependencyError';
  }
}

/** A step of a multi-process job failed; the step has already reported its own error. */
export class StepError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StepError';
  }
}
