import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { ConfigError, DependencyError, InputError } from '../util/errors';
import { componentLogger } from '../util/logger';

/**
 * Chooses where ONNX Runtime runs an encoder. The CPU provider ships inside onnxruntime-node;
 * the CUDA provider needs two extra provider libraries in onnxruntime-node's bin folder (not
 * fetched here: scripts/install-deps.sh installs with ONNXRUNTIME_NODE_INSTALL=skip) plus
 * CUDA 12 and cuDNN 9 on the library path.
 */

/** Where to run: 'cpu', 'cuda' (fail if it cannot load) or 'auto' (CUDA when it loads). */
export type Device = 'auto' | 'cpu' | 'cuda';

/** The provider a session was actually created with. */
export type Provider = 'cpu' | 'cuda';

export const DEVICES: readonly Device[] = ['auto', 'cpu', 'cuda'];

/** ONNX Runtime's own CUDA provider files, installed next to its native binding. */
export const CUDA_PROVIDER_FILES = [
  'libonnxruntime_providers_shared.so',
  'libonnxruntime_providers_cuda.so',
] as const;

/** The CUDA 12 / cuDNN 9 libraries the CUDA provider links against. */
export const CUDA_SYSTEM_LIBRARIES = ['libcudart.so.12', 'libcublas.so.12', 'libcudnn.so.9'];

const INSTALL_HINT =
  'install the CUDA build of onnxruntime-node with ' +
  '`npm install onnxruntime-node --onnxruntime-node-install=cuda12` (or the environment ' +
  'variable ONNXRUNTIME_NODE_INSTALL=cuda12; needs network access to its download feed), and ' +
  'CUDA 12 with cuDNN 9 on the library path (ldconfig or ' +
  'LD_LIBRARY_PATH); or run with --device cpu';

/** Checks a user-supplied device string. */
export function parseDevice(value: string, option = 'device'): Device {
  if ((DEVICES as readonly string[]).includes(value)) return value as Device;
  throw new ConfigError(`${option}: expected one of ${DEVICES.join(', ')}, received '${value}'`);
}

/** onnxruntime-node's folder of native files for this platform. */
export function onnxRuntimeBinFolder(): string {
  const packageRoot = path.dirname(require.resolve('onnxruntime-node/package.json'));
  return path.join(packageRoot, 'bin', 'napi-v6', process.platform, process.arch);
}

function onnxRuntimeVersion(): string {
  const packageFile = require.resolve('onnxruntime-node/package.json');
  return (JSON.parse(fs.readFileSync(packageFile, 'utf8')) as { version: string }).version;
}

/** `ldconfig -p`, or '' where ldconfig is absent (it lives in /sbin on Debian). */
export function readLdconfigCache(): string {
  for (const command of ['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig']) {
    try {
      const stdio: ('ignore' | 'pipe')[] = ['ignore', 'pipe', 'ignore'];
      return execFileSync(command, ['-p'], { encoding: 'utf8', stdio });
    } catch {
      // try the next location
    }
  }
  return '';
}

export interface CudaProbeOptions {
  /** Folder holding onnxruntime-node's native files. Default: `onnxRuntimeBinFolder()`. */
  providerFolder?: string;
  /** Output of `ldconfig -p`. Default: `readLdconfigCache()`. */
  ldconfigOutput?: string;
  /** Colon-separated folders searched as well. Default: `process.env.LD_LIBRARY_PATH`. */
  libraryPath?: string;
}

export interface CudaProbe {
  providerFolder: string;
  /** Provider files found in `providerFolder`, by file name. */
  providerFiles: Record<string, boolean>;
  /** Where each CUDA system library was found, or null. */
  systemLibraries: Record<string, string | null>;
  /** Every missing file, provider files first; empty when CUDA may load. */
  missing: string[];
}

function findInLdconfig(library: string, ldconfigOutput: string): string | null {
  // lines look like "\tlibcudart.so.12 (libc6,x86-64) => /usr/local/cuda/lib64/libcudart.so.12"
  for (const line of ldconfigOutput.split('\n')) {
    const match = /^\s*(\S+)\s+\(.*\)\s+=>\s+(\S+)/.exec(line);
    if (match && match[1] === library) return match[2];
  }
  return null;
}

function findInLibraryPath(library: string, libraryPath: string): string | null {
  for (const folder of libraryPath.split(':').filter((entry) => entry.length > 0)) {
    const candidate = path.join(folder, library);
    if (fs.existsSync(candidate)) return candidate;
  }
  return null;
}

/** Looks for every file the CUDA provider needs, without loading anything. */
export function probeCudaLibraries(options: CudaProbeOptions = {}): CudaProbe {
  const providerFolder = options.providerFolder ?? onnxRuntimeBinFolder();
  const ldconfigOutput = options.ldconfigOutput ?? readLdconfigCache();
  const libraryPath = options.libraryPath ?? process.env.LD_LIBRARY_PATH ?? '';

  const providerFiles: Record<string, boolean> = {};
  for (const file of CUDA_PROVIDER_FILES) {
    providerFiles[file] = fs.existsSync(path.join(providerFolder, file));
  }

  const systemLibraries: Record<string, string | null> = {};
  for (const library of CUDA_SYSTEM_LIBRARIES) {
    systemLibraries[library] =
      findInLibraryPath(library, libraryPath) ?? findInLdconfig(library, ldconfigOutput);
  }

  const missing = [
    ...CUDA_PROVIDER_FILES.filter((file) => !providerFiles[file]),
    ...CUDA_SYSTEM_LIBRARIES.filter((library) => systemLibraries[library] === null),
  ];
  return { providerFolder, providerFiles, systemLibraries, missing };
}

/** The DependencyError for a CUDA provider that cannot load, naming what is missing. */
export function cudaUnavailableError(probe: CudaProbe, loadError?: string): DependencyError {
  const providers = probe.missing.filter((file) => file in probe.providerFiles);
  const system = probe.missing.filter((file) => !(file in probe.providerFiles));
  const findings = [
    providers.length > 0 ? `missing ${providers.join(', ')} in ${probe.providerFolder}` : '',
    system.length > 0 ? `${system.join(', ')} not found by ldconfig or in LD_LIBRARY_PATH` : '',
    loadError ? `ONNX Runtime said: ${firstLine(loadError)}` : '',
  ].filter((finding) => finding.length > 0);

  return new DependencyError(
    `the CUDA execution provider cannot load: ${findings.join('; ')}. To fix: ${INSTALL_HINT}`,
  );
}

function firstLine(text: string): string {
  // ORT appends its native log (with terminal colour codes) to some messages
  const withoutColour = text.replace(/\x1b\[[0-9;]*m/g, '');
  return withoutColour.split('\n')[0].trim();
}

let ortLoggingSet = false;

/**
 * Maps dyncim's log level onto ONNX Runtime's (read once, at its first session). Its errors
 * reach us as exceptions, which we report ourselves, so below debug its own log stays silent.
 */
function configureOrtLogging(): void {
  if (ortLoggingSet) return;
  ortLoggingSet = true;
  const level = process.env.DYNCIM_LOG_LEVEL ?? 'info';
  ort.env.logLevel = level === 'trace' ? 'verbose' : level === 'debug' ? 'warning' : 'fatal';
}

async function createWith(model: Uint8Array, provider: Provider): Promise<ort.InferenceSession> {
  configureOrtLogging();
  return ort.InferenceSession.create(model, { executionProviders: [provider] });
}

/** Turns a CPU load failure into an InputError: the model itself is at fault. */
async function createOnCpu(model: Uint8Array, modelPath: string): Promise<ort.InferenceSession> {
  try {
    return await createWith(model, 'cpu');
  } catch (error) {
    throw new InputError(
      `ONNX Runtime cannot load this file as an ONNX model: ${firstLine(String(error))}`,
      modelPath,
    );
  }
}

export interface CreateSessionOptions {
  /** The ONNX model's bytes. */
  model: Uint8Array;
  /** Path of the model file, named in errors and logs. */
  modelPath: string;
  /** 'auto' (default), 'cpu' or 'cuda'. */
  device?: Device;
  /** Probe settings, for tests; defaults probe this machine. */
  probe?: CudaProbeOptions;
}

export interface CreatedSession {
  session: ort.InferenceSession;
  provider: Provider;
}

/**
 * Creates an inference session on the chosen device. A CUDA failure is told apart from a bad
 * model by loading the same bytes on the CPU: if that works, CUDA was at fault.
 */
export async function createSession(options: CreateSessionOptions): Promise<CreatedSession> {
  const device = parseDevice(options.device ?? 'auto');
  if (device === 'cpu') {
    return { session: await createOnCpu(options.model, options.modelPath), provider: 'cpu' };
  }

  const probe = probeCudaLibraries(options.probe);
  const providerMissing = CUDA_PROVIDER_FILES.some((file) => !probe.providerFiles[file]);
  if (providerMissing) return cudaFallback(options, device, probe);

  try {
    const session = await createWith(options.model, 'cuda');
    componentLogger('execution-provider').info(
      { provider: 'cuda', model: options.modelPath },
      'using the CUDA execution provider',
    );
    return { session, provider: 'cuda' };
  } catch (error) {
    return cudaFallback(options, device, probe, String(error));
  }
}

async function cudaFallback(
  options: CreateSessionOptions,
  device: Device,
  probe: CudaProbe,
  loadError?: string,
): Promise<CreatedSession> {
  const reason = cudaUnavailableError(probe, loadError);
  if (device === 'cuda' && loadError === undefined) throw reason;

  // a CUDA load error may be the model's fault: the CPU load tells, and throws InputError if so
  const session = await createOnCpu(options.model, options.modelPath);
  if (device === 'cuda') {
    await session.release();
    throw reason;
  }

  const why = reason.message.split('. To fix')[0].split('\n')[0];
  logCpuFallback(options.modelPath, probe, why);
  return { session, provider: 'cpu' };
}

const loggedFallbacks = new Set<string>();

/**
 * Says once per process and reason, in one line, that ONNX Runtime runs on the CPU and why;
 * later sessions repeat it only at debug level. `dyncim doctor` has the details.
 */
function logCpuFallback(modelPath: string | undefined, probe: CudaProbe, why: string): void {
  const log = componentLogger('execution-provider');
  const fields = { provider: 'cpu', model: modelPath, missing: probe.missing };
  const message = `ONNX Runtime execution provider: cpu, because ${why}`;
  if (loggedFallbacks.has(why)) {
    log.debug(fields, message);
    return;
  }

  loggedFallbacks.add(why);
  log.info(fields, message);
}

export interface OnnxRuntimeDescription {
  /** onnxruntime-node's package version. */
  version: string;
  /** Backends the native binding lists; `bundled: false` ones need extra files. */
  backends: { name: string; bundled: boolean }[];
  /** The CUDA probe: provider files, CUDA system libraries, what is missing. */
  cuda: CudaProbe;
}

/** What `dyncim doctor` prints about ONNX Runtime. Loads the binding, creates no session. */
export function describeOnnxRuntime(options: CudaProbeOptions = {}): OnnxRuntimeDescription {
  return {
    version: onnxRuntimeVersion(),
    backends: ort.listSupportedBackends().map(({ name, bundled }) => ({ name, bundled })),
    cuda: probeCudaLibraries(options),
  };
}
