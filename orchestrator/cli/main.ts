#!/usr/bin/env node
import * as fs from 'fs';
import * as path from 'path';
import { Command, CommanderError } from 'commander';
import { componentLogger } from '../util/logger';
import { ConfigError, DependencyError, InputError, ShapeError, StepError } from '../util/errors';
import { registerDoctorCommand } from './commands/doctor';
import { registerDatasetCommands } from './commands/dataset';
import { registerEncoderCommands } from './commands/encoders';
import { registerExtractCommands } from './commands/extract';
import { registerTrainCommands } from './commands/train';
import { registerExportCommands } from './commands/export';
import { registerPredictCommand } from './commands/predict';
import { registerRunCommand } from './commands/run';

/**
 * The `dyncim` command. Subcommands load their heavy modules (ONNX Runtime, tf.js) only when
 * they run, so extraction and training stay in separate processes with separate native stacks.
 */

const KNOWN_ERRORS = [InputError, ShapeError, ConfigError, DependencyError, StepError];

/** The version in the toolkit's package.json, found from source or from dist/. */
function packageVersion(): string {
  for (let folder = __dirname; folder !== path.dirname(folder); folder = path.dirname(folder)) {
    const file = path.join(folder, 'package.json');
    if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')).version;
  }
  return 'unknown';
}

function buildProgram(): Command {
  const program = new Command('dyncim')
    .description('DynCIM: dynamic curriculum for imbalanced multimodal learning')
    .version(packageVersion())
    .showHelpAfterError();

  registerDoctorCommand(program);
  registerDatasetCommands(program);
  registerEncoderCommands(program);
  registerExtractCommands(program);
  registerTrainCommands(program);
  registerExportCommands(program);
  registerPredictCommand(program);
  registerRunCommand(program);
  return program;
}

function reportError(error: unknown): void {
  const log = componentLogger('cli');
  if (KNOWN_ERRORS.some((kind) => error instanceof kind)) {
    log.error({ kind: (error as Error).name }, (error as Error).message);
  } else {
    log.error({ err: error }, 'unexpected error');
  }
}

buildProgram()
  .parseAsync(process.argv)
  .catch((error: unknown) => {
    if (error instanceof CommanderError) process.exit(error.exitCode);
    reportError(error);
    process.exit(1);
  });
