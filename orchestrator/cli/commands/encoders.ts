import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { Command } from 'commander';
import { DependencyError } from '../../util/errors';
import { componentLogger } from '../../util/logger';
import { parseInteger } from '../options';

/**
 * `dyncim encoders build`: the frozen encoders. The TypeScript side writes the pretraining
 * arrays with the same preprocessing code that inference uses, and the PyTorch script trains
 * (or loads a user's checkpoint for) each ResNet-18 and exports it to ONNX.
 */

interface EncoderFlags {
  out: string;
  data: string;
  checkpointAudio?: string;
  checkpointVisual?: string;
  epochs?: number;
  seed: number;
  force?: boolean;
}

const SCRIPT = path.resolve(__dirname, '..', '..', '..', 'scripts', 'export_encoders.py');

function scriptPath(): string {
  // compiled to dist/orchestrator/cli/commands, so the repository root is one level further up
  const fromDist = path.resolve(__dirname, '..', '..', '..', '..', 'scripts', 'export_encoders.py');
  return fs.existsSync(SCRIPT) ? SCRIPT : fromDist;
}

function encodersPresent(out: string): boolean {
  return ['audio', 'visual'].every((modality) =>
    fs.existsSync(path.join(out, `${modality}-resnet18.onnx`)),
  );
}

async function ensurePretrainArrays(flags: EncoderFlags): Promise<void> {
  const needed = !flags.checkpointAudio || !flags.checkpointVisual;
  const present = ['audio', 'visual'].every((m) =>
    fs.existsSync(path.join(flags.data, m, 'inputs.npy')),
  );
  if (!needed || (present && !flags.force)) return;

  const { buildPretrainArrays } = await import('../../data/dataset-builder');
  await buildPretrainArrays({ outDir: flags.data, seed: flags.seed });
}

export async function buildEncoders(flags: EncoderFlags): Promise<void> {
  const log = componentLogger('encoders');
  if (encodersPresent(flags.out) && !flags.force) {
    log.info({ out: flags.out }, 'encoders already built; pass --force to rebuild');
    return;
  }

  const { findPython } = await import('../../util/python');
  const python = findPython();
  if (python.problem) {
    throw new DependencyError(
      `${python.executable} cannot run the export script: ${python.problem}. ` +
        'Install Debian packages python3-torch python3-torchvision python3-onnx ' +
        '(bash scripts/install-deps.sh does), or set DYNCIM_PYTHON to an interpreter that has them',
    );
  }
  await ensurePretrainArrays(flags);

  const args = [scriptPath(), '--out', flags.out, '--seed', String(flags.seed)];
  if (flags.checkpointAudio) args.push('--checkpoint-audio', flags.checkpointAudio);
  if (flags.checkpointVisual) args.push('--checkpoint-visual', flags.checkpointVisual);
  if (!flags.checkpointAudio || !flags.checkpointVisual) args.push('--data', flags.data);
  if (flags.epochs !== undefined) args.push('--epochs', String(flags.epochs));

  log.info({ python: python.executable, torch: python.torch, args }, 'encoder export started');
  const result = spawnSync(python.executable, args, { stdio: 'inherit' });
  if (result.status !== 0) {
    throw new DependencyError(
      `encoder export script failed (exit code ${result.status}); see its output above`,
    );
  }
}

export function registerEncoderCommands(program: Command): void {
  const encoders = program.command('encoders').description('frozen ONNX encoders');

  encoders
    .command('build')
    .description('pretrain (or load) ResNet-18 encoders in PyTorch and export them to ONNX')
    .option('--out <dir>', 'folder for <modality>-resnet18.onnx and provenance .json', 'models')
    .option('--data <dir>', 'pretraining arrays (built here if missing)', '.cache/pretrain')
    .option(
      '--checkpoint-audio <file>',
      'your own audio ResNet-18 state_dict instead of pretraining',
    )
    .option(
      '--checkpoint-visual <file>',
      'your own visual ResNet-18 state_dict instead of pretraining',
    )
    .option(
      '--epochs <n>',
      'pretraining epochs (default: audio 8, visual 12)',
      parseInteger('--epochs'),
    )
    .option(
      '--seed <n>',
      'seed for the pretraining arrays and the script',
      parseInteger('--seed'),
      0,
    )
    .option('--force', 'rebuild even if the encoders exist')
    .action(async (flags: EncoderFlags) => buildEncoders(flags));
}
