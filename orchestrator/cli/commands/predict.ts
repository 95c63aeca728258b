import * as path from 'path';
import { Command } from 'commander';
import { collectKeyValue } from '../options';

/**
 * `dyncim predict`: everything through ONNX Runtime, no tf.js. Either raw inputs (a WAV file
 * and an image) through the frozen encoders and the exported head, or cached features of a
 * whole split through the exported head.
 */

interface PredictFlags {
  head: string;
  wav?: string;
  image?: string;
  input?: Record<string, string>;
  encoder?: Record<string, string>;
  models: string;
  device: string;
  features?: string;
  split: string;
  invert?: boolean;
  allowEncoderMismatch?: boolean;
}

/** Raw input files per modality: --wav and --image are shorthands for audio and visual. */
function rawInputs(flags: PredictFlags): Record<string, string> {
  const inputs: Record<string, string> = { ...flags.input };
  if (flags.wav) inputs.audio = flags.wav;
  if (flags.image) inputs.visual = flags.image;
  return inputs;
}

export function registerPredictCommand(program: Command): void {
  program
    .command('predict')
    .description('predict with an exported head: raw inputs (WAV + image) or cached features')
    .requiredOption(
      '--head <file>',
      'exported head (.onnx) written by `dyncim export` or `dyncim run`',
    )
    .option('--wav <file>', 'audio input (WAV, any rate, mono or stereo)')
    .option('--image <file>', 'visual input (PNG or binary PGM; white digit on black)')
    .option(
      '--input <modality=file>',
      'an input file for any modality, repeatable',
      collectKeyValue,
    )
    .option(
      '--encoder <modality=file>',
      'encoder .onnx for a modality, repeatable',
      collectKeyValue,
    )
    .option('--models <dir>', 'folder with <modality>-resnet18.onnx encoders', 'models')
    .option('--device <name>', 'ONNX Runtime device: auto, cpu or cuda', 'auto')
    .option('--invert', 'invert the image (for dark digits on a light background)')
    .option('--allow-encoder-mismatch', 'run even if an encoder differs from the one trained with')
    .option('--features <file>', 'instead of raw inputs: a feature index (features.json)')
    .option('--split <name>', 'with --features: the split to predict (train, val, test)', 'test')
    .action(async (flags: PredictFlags) => {
      const { predictRaw, predictSplit } = await import('../../inference/predict');
      const device = flags.device as 'auto' | 'cpu' | 'cuda';

      if (flags.features) {
        const result = await predictSplit({
          headPath: flags.head,
          featureIndex: flags.features,
          split: flags.split as 'train' | 'val' | 'test',
          device,
        });
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        return;
      }

      const encoders: Record<string, string> = { ...flags.encoder };
      const result = await predictRaw({
        headPath: flags.head,
        inputs: rawInputs(flags),
        encoderPaths: encoders,
        modelsDir: path.resolve(flags.models),
        device,
        invertImage: Boolean(flags.invert),
        allowEncoderMismatch: Boolean(flags.allowEncoderMismatch),
      });
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    });
}
