import * as fs from 'fs';
import { spawnSync } from 'child_process';

/**
 * Finds the Python interpreter for the encoder export script. Debian's python3-torch installs
 * into the system interpreter's packages, which a pyenv or venv `python3` earlier on PATH does
 * not see, so the system one is preferred. DYNCIM_PYTHON overrides both.
 */

export interface PythonInfo {
  executable: string;
  version?: string;
  torch?: string;
  torchvision?: string;
  onnx?: string;
  /** Why torch could not be imported, when it could not. */
  problem?: string;
}

const PROBE = [
  'import sys, json',
  'info = {"version": sys.version.split()[0]}',
  'for name in ("torch", "torchvision", "onnx"):',
  '    try:',
  '        info[name] = __import__(name).__version__',
  '    except Exception as error:',
  '        info[name + "_error"] = str(error)',
  'print(json.dumps(info))',
].join('\n');

function candidates(): string[] {
  if (process.env.DYNCIM_PYTHON) return [process.env.DYNCIM_PYTHON];
  return ['/usr/bin/python3', 'python3'].filter(
    (candidate) => !candidate.startsWith('/') || fs.existsSync(candidate),
  );
}

function probe(executable: string): PythonInfo {
  const result = spawnSync(executable, ['-c', PROBE], { encoding: 'utf8', timeout: 60000 });
  if (result.status !== 0) {
    return {
      executable,
      problem: (result.stderr || String(result.error)).trim().split('\n').pop(),
    };
  }

  const info = JSON.parse(result.stdout.trim());
  return {
    executable,
    version: info.version,
    torch: info.torch,
    torchvision: info.torchvision,
    onnx: info.onnx,
    problem: info.torch_error ?? info.torchvision_error ?? info.onnx_error,
  };
}

/** The first interpreter that imports torch, torchvision and onnx, or the last one's problem. */
export function findPython(): PythonInfo {
  let last: PythonInfo = { executable: 'python3', problem: 'no python3 found' };
  for (const executable of candidates()) {
    last = probe(executable);
    if (!last.problem) return last;
  }
  return last;
}
