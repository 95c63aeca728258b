import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Command } from 'commander';
import { registerDatasetCommands } from '../orchestrator/cli/commands/dataset';
import { loadDataset } from '../orchestrator/data/manifest';
import { encodeWav16 } from '../orchestrator/data/wav';
import { ConfigError } from '../orchestrator/util/errors';
import { readNpy } from '../orchestrator/util/npy';

const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dyncim-dataset-command-'));
afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

let stdout = '';
beforeEach(() => {
  stdout = '';
  jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
});
afterEach(() => jest.restoreAllMocks());

async function runCli(...args: string[]): Promise<void> {
  const program = new Command('dyncim').exitOverride();
  registerDatasetCommands(program);
  program.commands.forEach((command) => command.exitOverride());
  await program.parseAsync(args, { from: 'user' });
}

function helpOf(subcommand: string): string {
  const program = new Command('dyncim');
  registerDatasetCommands(program);
  const dataset = program.commands.find((command) => command.name() === 'dataset')!;
  const command = dataset.commands.find((candidate) => candidate.name() === subcommand)!;
  return command.helpInformation();
}

function makeFsdd(): string {
  const dir = path.join(folder, 'recordings');
  fs.mkdirSync(dir);
  for (let digit = 0; digit < 10; digit++) {
    for (const index of [1, 6, 12]) {
      const samples = Float32Array.from(
        { length: 2000 },
        (_, n) => 0.2 * Math.sin(n * (digit + 1) * 0.05),
      );
      fs.writeFileSync(
        path.join(dir, `${digit}_zoe_${index}.wav`),
        encodeWav16({ samples, sampleRate: 8000 }),
      );
    }
  }
  return dir;
}

describe('dyncim dataset build', () => {
  it('builds an FSDD dataset and prints a JSON summary', async () => {
    const out = path.join(folder, 'fsdd-out');

    await runCli(
      'dataset',
      'build',
      '--source',
      'fsdd',
      '--fsdd-dir',
      makeFsdd(),
      '--out',
      out,
      '--seed',
      '2',
      '--image-corruption',
      '0',
    );

    const summary = JSON.parse(stdout);
    expect(summary.samples).toBe(30);
    expect(summary.splits).toEqual({ train: 10, val: 10, test: 10 });
    const loaded = loadDataset(out);
    expect(loaded.manifest.seed).toBe(2);
    expect(loaded.manifest.samples.every((sample) => sample.imageCorruption.severity === 0)).toBe(
      true,
    );
  });

  it('rejects an unknown source and a non-numeric option, naming the option', async () => {
    await expect(runCli('dataset', 'build', '--source', 'tape')).rejects.toThrow(ConfigError);
    await expect(runCli('dataset', 'build', '--source', 'tape')).rejects.toThrow(
      /--source must be synth or fsdd; got 'tape'/,
    );
    await expect(runCli('dataset', 'build', '--seed', 'abc')).rejects.toThrow(
      /--seed must be an integer; got 'abc'/,
    );
  });

  it('documents a default for every option', () => {
    const help = helpOf('build');

    // an option's entry starts on a line indented by two spaces and a dash
    const entries = help
      .split(/\n {2}(?=-)/)
      .slice(1)
      .map((entry) => entry.replace(/\s+/g, ' '));
    const flags = entries.map((entry) => entry.replace(/^-h, /, '').split(' ')[0]);

    expect(flags).toEqual([
      '--source',
      '--fsdd-dir',
      '--out',
      '--seed',
      '--samples-per-class',
      '--image-corruption',
      '--audio-snr-db',
      '--cache',
      '--concurrency',
      '--speaker-seed',
      '--help',
    ]);
    entries.slice(0, -1).forEach((entry) => expect(entry).toMatch(/\(default: /));
    expect(entries[2]).toContain('(default: datasets/<source>)');
    expect(entries[4]).toContain('(default: 300)');
  });
});

describe('dyncim dataset pretrain-arrays', () => {
  it('builds the visual arrays alone', async () => {
    const out = path.join(folder, 'pretrain');

    await runCli(
      'dataset',
      'pretrain-arrays',
      '--out',
      out,
      '--modalities',
      'visual',
      '--images-per-class',
      '3',
    );

    expect(JSON.parse(stdout).visual).toEqual({ count: 30, heldout: 10 });
    expect(readNpy(path.join(out, 'visual', 'inputs.npy')).shape).toEqual([30, 3, 32, 32]);
    expect(fs.existsSync(path.join(out, 'audio'))).toBe(false);
  });

  it('rejects an unknown modality and documents its defaults', async () => {
    await expect(
      runCli('dataset', 'pretrain-arrays', '--modalities', 'audio,smell'),
    ).rejects.toThrow(/--modalities takes audio, visual or both; got 'audio,smell'/);
    const help = helpOf('pretrain-arrays').replace(/\s+/g, ' ');
    expect(help).toContain('(default: "audio,visual")');
    expect(help).toContain('(default: the whole pretraining pool, ~400)');
  });
});
