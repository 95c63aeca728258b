import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import pino from 'pino';
import {
  createSession,
  cudaUnavailableError,
  describeOnnxRuntime,
  parseDevice,
  probeCudaLibraries,
} from '../orchestrator/encoders/execution-provider';
import { ConfigError, DependencyError, InputError } from '../orchestrator/util/errors';
import { rootLogger, setRootLogger } from '../orchestrator/util/logger';
import { tinyModelBytes } from './helpers/tiny-encoder';

let scratch: string;

beforeAll(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'dyncim-execution-provider-'));
});

afterAll(() => {
  fs.rmSync(scratch, { recursive: true, force: true });
});

function folderWith(name: string, files: string[]): string {
  const folder = path.join(scratch, name);
  fs.mkdirSync(folder, { recursive: true });
  for (const file of files) fs.writeFileSync(path.join(folder, file), '');
  return folder;
}

const LDCONFIG_SAMPLE = [
  "3 libs found in cache `/etc/ld.so.cache'",
  '\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1',
  '\tlibcublas.so.12 (libc6,x86-64) => /usr/local/cuda/lib64/libcublas.so.12',
  '\tlibcublasLt.so.12 (libc6,x86-64) => /usr/local/cuda/lib64/libcublasLt.so.12',
].join('\n');

describe('parseDevice', () => {
  test.each(['auto', 'cpu', 'cuda'])('accepts %s', (device) => {
    expect(parseDevice(device)).toBe(device);
  });

  test('BAD CALL: an unknown device is a ConfigError naming the option and value', () => {
    expect(() => parseDevice('gpu', '--device')).toThrow(ConfigError);
    expect(() => parseDevice('gpu', '--device')).toThrow(
      "--device: expected one of auto, cpu, cuda, received 'gpu'",
    );
  });
});

describe('probeCudaLibraries', () => {
  test('finds provider files, LD_LIBRARY_PATH and ldconfig entries; lists what is missing', () => {
    const providerFolder = folderWith('ort-bin', [
      'libonnxruntime_providers_shared.so',
      'libonnxruntime_providers_cuda.so',
    ]);
    const cudaFolder = folderWith('cuda-lib', ['libcudart.so.12']);

    const probe = probeCudaLibraries({
      providerFolder,
      libraryPath: `/nonexistent:${cudaFolder}`,
      ldconfigOutput: LDCONFIG_SAMPLE,
    });

    expect(probe.providerFiles).toEqual({
      'libonnxruntime_providers_shared.so': true,
      'libonnxruntime_providers_cuda.so': true,
    });
    expect(probe.systemLibraries).toEqual({
      'libcudart.so.12': path.join(cudaFolder, 'libcudart.so.12'),
      'libcublas.so.12': '/usr/local/cuda/lib64/libcublas.so.12',
      'libcudnn.so.9': null,
    });
    expect(probe.missing).toEqual(['libcudnn.so.9']);
  });

  test('lists missing provider files before system libraries', () => {
    const probe = probeCudaLibraries({
      providerFolder: folderWith('empty-bin', []),
      libraryPath: '',
      ldconfigOutput: '',
    });

    expect(probe.missing).toEqual([
      'libonnxruntime_providers_shared.so',
      'libonnxruntime_providers_cuda.so',
      'libcudart.so.12',
      'libcublas.so.12',
      'libcudnn.so.9',
    ]);
  });
});

describe('cudaUnavailableError', () => {
  test('names each missing file with where it was looked for, and the fix', () => {
    const providerFolder = folderWith('only-shared', ['libonnxruntime_providers_shared.so']);
    const probe = probeCudaLibraries({ providerFolder, libraryPath: '', ldconfigOutput: '' });

    const error = cudaUnavailableError(probe, 'Error: failed\nnative log line');

    expect(error).toBeInstanceOf(DependencyError);
    expect(error.message).toBe(
      'the CUDA execution provider cannot load: ' +
        `missing libonnxruntime_providers_cuda.so in ${providerFolder}; ` +
        'libcudart.so.12, libcublas.so.12, libcudnn.so.9 not found by ldconfig or in ' +
        'LD_LIBRARY_PATH; ONNX Runtime said: Error: failed. To fix: install the CUDA build of ' +
        'onnxruntime-node with `npm install onnxruntime-node ' +
        '--onnxruntime-node-install=cuda12` (or the environment variable ' +
        'ONNXRUNTIME_NODE_INSTALL=cuda12; needs network access to its download feed), and ' +
        'CUDA 12 with cuDNN 9 on the library path (ldconfig or LD_LIBRARY_PATH); or run with ' +
        '--device cpu',
    );
  });
});

describe('describeOnnxRuntime', () => {
  test('reports the package version, the native backends and the CUDA probe', () => {
    const packageJson = require.resolve('onnxruntime-node/package.json');
    const version = JSON.parse(fs.readFileSync(packageJson, 'utf8')).version;

    const description = describeOnnxRuntime();

    expect(description.version).toBe(version);
    expect(description.backends).toContainEqual({ name: 'cpu', bundled: true });
    expect(description.backends).toContainEqual(expect.objectContaining({ name: 'cuda' }));
    expect(Object.keys(description.cuda.providerFiles)).toEqual([
      'libonnxruntime_providers_shared.so',
      'libonnxruntime_providers_cuda.so',
    ]);
  });
});

describe('createSession', () => {
  const model = tinyModelBytes();
  const modelPath = 'tiny.onnx';
  const noProviders = () => ({ providerFolder: folderWith('no-providers', []) });
  let logLines: Record<string, unknown>[];
  const originalLogger = rootLogger();

  beforeEach(() => {
    logLines = [];
    const sink = { write: (line: string) => logLines.push(JSON.parse(line)) };
    setRootLogger(pino({ level: 'info' }, sink));
  });

  afterEach(() => {
    setRootLogger(originalLogger);
  });

  test('cpu: creates a session that names the encoder input', async () => {
    const { session, provider } = await createSession({ model, modelPath, device: 'cpu' });

    expect(provider).toBe('cpu');
    expect(session.inputNames).toEqual(['input']);
    await session.release();
  });

  test('EXPECTED FAILURE: cuda without provider files: DependencyError naming them', async () => {
    const creation = createSession({ model, modelPath, device: 'cuda', probe: noProviders() });

    await expect(creation).rejects.toThrow(DependencyError);
    await expect(
      createSession({ model, modelPath, device: 'cuda', probe: noProviders() }),
    ).rejects.toThrow(/missing libonnxruntime_providers_shared\.so, .* in .*no-providers;/);
  });

  test('auto without provider files falls back to CPU and logs why', async () => {
    const { session, provider } = await createSession({ model, modelPath, probe: noProviders() });
    await session.release();

    expect(provider).toBe('cpu');
    const line = logLines.find((entry) => entry.provider === 'cpu');
    expect(line?.msg).toMatch(
      /^ONNX Runtime execution provider: cpu, because the CUDA execution provider cannot load: missing /,
    );
    expect(line?.missing).toContain('libonnxruntime_providers_cuda.so');
  });

  test('EXPECTED FAILURE: bad model bytes are an InputError naming the file', async () => {
    const creation = createSession({ model: new Uint8Array([8, 1, 2]), modelPath, device: 'cpu' });

    await expect(creation).rejects.toThrow(InputError);
    await expect(
      createSession({ model: new Uint8Array([8, 1, 2]), modelPath, device: 'cpu' }),
    ).rejects.toThrow(/^tiny\.onnx: ONNX Runtime cannot load this file as an ONNX model/);
  });

  // this machine: whatever the CUDA probe finds missing must be named by device 'cuda'
  const machineMissing = describeOnnxRuntime().cuda.missing;
  const onMachineWithoutCuda = machineMissing.length > 0 ? test : test.skip;

  // provider files "present" (empty fakes) sends the call through a real CUDA load attempt
  const fakeProviders = () => ({
    providerFolder: folderWith('fake-providers', [
      'libonnxruntime_providers_shared.so',
      'libonnxruntime_providers_cuda.so',
    ]),
  });

  onMachineWithoutCuda('cuda whose load fails: a DependencyError quoting ORT', async () => {
    const creation = createSession({ model, modelPath, device: 'cuda', probe: fakeProviders() });

    await expect(creation).rejects.toThrow(/cannot load: .*ONNX Runtime said: .*\S/);
  });

  onMachineWithoutCuda('auto whose CUDA load fails: CPU, with the load error logged', async () => {
    const { session, provider } = await createSession({ model, modelPath, probe: fakeProviders() });
    await session.release();

    expect(provider).toBe('cpu');
    expect(logLines.find((entry) => entry.provider === 'cpu')?.msg).toMatch(/ONNX Runtime said/);
  });

  onMachineWithoutCuda('cuda with a bad model: the CPU retry blames the model', async () => {
    const bad = new Uint8Array([8, 1, 2]);
    const creation = createSession({
      model: bad,
      modelPath,
      device: 'cuda',
      probe: fakeProviders(),
    });

    await expect(creation).rejects.toThrow(InputError);
  });

  onMachineWithoutCuda(
    'cuda on this machine: a DependencyError naming a missing file',
    async () => {
      const error = await createSession({ model, modelPath, device: 'cuda' }).catch((e) => e);

      expect(error).toBeInstanceOf(DependencyError);
      expect(error.message).toContain(machineMissing[0]);
      expect(error.message).toMatch(/To fix: install the CUDA build of onnxruntime-node/);
    },
  );
});
