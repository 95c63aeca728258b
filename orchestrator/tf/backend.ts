import * as tf from '@tensorflow/tfjs';
import { DependencyError } from '../util/errors';
import { componentLogger } from '../util/logger';

/**
 * Chooses the tf.js backend. The native bindings are optional dependencies: they need a
 * libtensorflow download at install time, which fails on machines without network access, so
 * the toolkit falls back to WebAssembly and then to plain JavaScript.
 */

export type BackendPreference = 'auto' | 'node-gpu' | 'node' | 'wasm' | 'cpu';

export interface BackendCandidate {
  preference: Exclude<BackendPreference, 'auto'>;
  /** The npm package that provides it. */
  packageName: string;
  /** The name tf.js registers it under. */
  backendName: string;
}

export const BACKEND_CANDIDATES: BackendCandidate[] = [
  { preference: 'node-gpu', packageName: '@tensorflow/tfjs-node-gpu', backendName: 'tensorflow' },
  { preference: 'node', packageName: '@tensorflow/tfjs-node', backendName: 'tensorflow' },
  { preference: 'wasm', packageName: '@tensorflow/tfjs-backend-wasm', backendName: 'wasm' },
  { preference: 'cpu', packageName: '@tensorflow/tfjs', backendName: 'cpu' },
];

export interface BackendChoice {
  /** The backend that runs, as tf.js names it. */
  backendName: string;
  packageName: string;
  /** Why each candidate tried before it did not load. */
  skipped: Array<{ packageName: string; reason: string }>;
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0];
}

async function tryCandidate(candidate: BackendCandidate): Promise<void> {
  // the native packages register the 'tensorflow' backend on require, in the same tfjs engine
  if (candidate.preference !== 'cpu') require(candidate.packageName);

  const ready = await tf.setBackend(candidate.backendName);
  if (!ready) throw new Error(`tf.setBackend('${candidate.backendName}') returned false`);
  await tf.ready();
  if (candidate.backendName === 'cpu') silenceNodeBackendAdvert();
}

/**
 * The plain CPU backend prints a banner recommending tfjs-node on its first tensor. The
 * toolkit has already logged which backend runs and why the native one did not load, so the
 * banner only repeats that in a different voice.
 */
function silenceNodeBackendAdvert(): void {
  const backend = tf.backend() as unknown as { firstUse?: boolean };
  if ('firstUse' in backend) backend.firstUse = false;
}

function candidatesFor(preference: BackendPreference): BackendCandidate[] {
  if (preference === 'auto') return BACKEND_CANDIDATES;
  return BACKEND_CANDIDATES.filter((candidate) => candidate.preference === preference);
}

let chosen: BackendChoice | undefined;

/**
 * Loads the first backend that works, in the order tfjs-node-gpu, tfjs-node, WASM, CPU
 * (or only the one asked for), and logs which runs and why the others did not.
 */
export async function initialiseBackend(
  preference: BackendPreference = 'auto',
): Promise<BackendChoice> {
  if (
    chosen &&
    (preference === 'auto' || chosen.backendName === candidatesFor(preference)[0]?.backendName)
  ) {
    return chosen;
  }

  const log = componentLogger('backend');
  const skipped: BackendChoice['skipped'] = [];

  for (const candidate of candidatesFor(preference)) {
    try {
      await tryCandidate(candidate);
      chosen = { backendName: candidate.backendName, packageName: candidate.packageName, skipped };
      log.info(
        { backend: candidate.backendName, package: candidate.packageName, skipped },
        'tf.js backend chosen',
      );
      return chosen;
    } catch (error) {
      skipped.push({ packageName: candidate.packageName, reason: firstLine(error) });
    }
  }

  throw new DependencyError(
    `no tf.js backend could be loaded for '${preference}': ` +
      skipped.map((entry) => `${entry.packageName}: ${entry.reason}`).join('; '),
  );
}

/** What each backend candidate would do on this machine, without switching backends. */
export function probeBackends(): Array<{
  packageName: string;
  available: boolean;
  reason: string;
}> {
  return BACKEND_CANDIDATES.map((candidate) => {
    try {
      require.resolve(candidate.packageName);
      if (candidate.preference === 'node' || candidate.preference === 'node-gpu') {
        require(candidate.packageName);
      }
      return { packageName: candidate.packageName, available: true, reason: 'loads' };
    } catch (error) {
      return { packageName: candidate.packageName, available: false, reason: firstLine(error) };
    }
  });
}
