import { spawnSync } from 'child_process';
import { Command } from 'commander';

/**
 * `dyncim doctor`: what this machine offers. Each part runs in its own child process, so the
 * report can load ONNX Runtime and tf.js without the two ever sharing a process.
 */

function section(title: string, lines: string[]): string {
  return [`${title}`, ...lines.map((line) => `  ${line}`)].join('\n');
}

async function onnxRuntimeSection(): Promise<string> {
  const { describeOnnxRuntime } = await import('../../encoders/execution-provider');
  const description = describeOnnxRuntime();
  const backends = description.backends.map((b) => `${b.name}${b.bundled ? '' : ' (not bundled)'}`);
  const cudaReady = description.cuda.missing.length === 0;
  const lines = [
    `onnxruntime-node ${description.version}`,
    `providers: ${backends.join(', ')}`,
    cudaReady
      ? 'CUDA provider: all libraries found'
      : `CUDA provider: unavailable, missing ${description.cuda.missing.join(', ')}`,
    `--device auto would use: ${cudaReady ? 'cuda' : 'cpu'}`,
  ];
  return section('ONNX Runtime (feature extraction, predict)', lines);
}

async function tfSection(): Promise<string> {
  const { probeBackends, initialiseBackend } = await import('../../tf/backend');
  const lines = probeBackends().map(
    (entry) =>
      `${entry.packageName}: ${entry.available ? 'available' : `not loadable (${entry.reason})`}`,
  );
  const choice = await initialiseBackend('auto');
  lines.push(`would run: ${choice.backendName} (${choice.packageName})`);
  return section('tf.js (training)', lines);
}

async function pythonSection(): Promise<string> {
  const { findPython } = await import('../../util/python');
  const info = findPython();
  const lines = [
    `interpreter: ${info.executable} ${info.version ?? ''}`.trim(),
    `torch: ${info.torch ?? 'missing'}, torchvision: ${info.torchvision ?? 'missing'}, ` +
      `onnx: ${info.onnx ?? 'missing'}`,
  ];
  if (info.problem)
    lines.push(`problem: ${info.problem} (install python3-torch python3-torchvision python3-onnx)`);
  return section('Python (encoder export script)', lines);
}

function toolSection(): string {
  const espeak = spawnSync('espeak-ng', ['--version'], { encoding: 'utf8' });
  const line =
    espeak.status === 0 ? espeak.stdout.trim() : 'missing (install the Debian package espeak-ng)';
  return section('Speech synthesis (embedded dataset)', [`espeak-ng: ${line}`]);
}

const PARTS: Record<string, () => Promise<string>> = {
  onnx: onnxRuntimeSection,
  tf: tfSection,
  python: pythonSection,
  tools: async () => toolSection(),
};

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('report ONNX Runtime providers, the tf.js backend, Python/PyTorch and espeak-ng')
    .option('--part <name>', 'report one part only: onnx, tf, python, tools')
    .action(async (flags: { part?: string }) => {
      if (flags.part) {
        const part = PARTS[flags.part];
        if (!part) throw new Error(`--part must be one of ${Object.keys(PARTS).join(', ')}`);
        process.stdout.write((await part()) + '\n');
        return;
      }

      for (const name of Object.keys(PARTS)) {
        const child = spawnSync(process.execPath, [process.argv[1], 'doctor', '--part', name], {
          encoding: 'utf8',
          env: { ...process.env, DYNCIM_LOG_LEVEL: 'warn' },
        });
        const text =
          child.status === 0 ? child.stdout.trimEnd() : `${name}: failed\n${child.stderr}`;
        process.stdout.write(text + '\n\n');
      }
    });
}
